"""Points in time as people type them after ``--since`` / ``--until``, in journalctl's forms (systemd.time(7)):
``now``, ``today``, ``yesterday``, ``tomorrow``, relative spans (``-1h``, ``-30min``, ``-1h 30min``, ``2d ago``,
``+5min``), ISO 8601 (``2026-11-29T10:00:00Z``, with or without an offset) and ``YYYY-MM-DD [HH:MM[:SS]]``.

A time without an offset is read in the local time zone, as journalctl reads it. The result is always UTC-aware
(the store's time columns are). Plain strings in, datetimes out: nothing here imports the rest of macha.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta, timezone, tzinfo

#: systemd.time(7) span units, in seconds (a month and a year are its averages).
_SPAN_UNITS: dict[str, float] = {
    **dict.fromkeys(("us", "usec", "µs"), 1e-6),
    **dict.fromkeys(("ms", "msec"), 1e-3),
    **dict.fromkeys(("s", "sec", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hour", "hours"), 3600.0),
    **dict.fromkeys(("d", "day", "days"), 86400.0),
    **dict.fromkeys(("w", "week", "weeks"), 604800.0),
    **dict.fromkeys(("M", "month", "months"), 2629800.0),
    **dict.fromkeys(("y", "year", "years"), 31557600.0),
}
_SPAN_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-zA-Zµ]+)")
#: Far enough for any stored event; farther is a typo (and past datetime's range soon after).
MAX_SPAN = timedelta(days=365 * 100)
_FORMS = "now, today, yesterday, -1h, -30min, '2d ago', an ISO time or 'YYYY-MM-DD HH:MM:SS'"


class TimeSpecError(ValueError):
    """A time that cannot be read; the message quotes it and names the accepted forms."""


def _span(text: str) -> timedelta | None:
    """``1h 30min`` (or ``1h30min``) as a timedelta; None when it is not a span."""
    pos, total = 0, 0.0
    text = text.strip()
    if not text:
        return None
    for m in _SPAN_PART.finditer(text):
        if text[pos:m.start()].strip():
            return None
        # "M" is a month and "m" a minute, as in systemd; other units are read in any case ("30MIN").
        unit = m[2] if m[2] in _SPAN_UNITS else m[2].lower()
        if unit not in _SPAN_UNITS:
            return None
        total += float(m[1]) * _SPAN_UNITS[unit]
        pos = m.end()
    if pos == 0 or text[pos:].strip():
        return None
    if total > MAX_SPAN.total_seconds():
        raise TimeSpecError(f"time {text!r} is more than 100 years away")
    return timedelta(seconds=total)


def parse_time(text: str, now: datetime | None = None, tz: tzinfo | None = None) -> datetime:
    """The UTC time that ``text`` names, relative to ``now`` (default: the current time); ``tz`` is the zone of
    times without an offset and of today/yesterday (default: the local zone). Raises TimeSpecError."""
    if not isinstance(text, str) or not text.strip():
        raise TimeSpecError(f"empty time (use {_FORMS})")
    if len(text) > 64:
        raise TimeSpecError(f"time {text[:40]!r}... is too long (use {_FORMS})")
    raw = text.strip()
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    local_now = now.astimezone(tz) if tz is not None else now.astimezone()
    zone = local_now.tzinfo
    word = raw.lower()
    if word == "now":
        return now
    days = {"today": 0, "yesterday": -1, "tomorrow": 1}.get(word)
    if days is not None:
        midnight = datetime.combine(local_now.date() + timedelta(days=days), time(), zone)
        return midnight.astimezone(timezone.utc)
    sign, body = 0, raw
    if raw[0] in "+-":
        sign, body = (1 if raw[0] == "+" else -1), raw[1:]
    elif word.endswith(" ago"):
        sign, body = -1, raw[:-4]
    elif word.endswith(" left"):
        sign, body = 1, raw[:-5]
    if sign:
        span = _span(body)
        if span is None:
            raise TimeSpecError(f"time {raw!r} is not a span like -1h, -30min or '2d ago' (use {_FORMS})")
        return now + sign * span
    try:
        # fromisoformat reads ISO 8601 and 'YYYY-MM-DD HH:MM[:SS]' alike, and a trailing Z.
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise TimeSpecError(f"time {raw!r} is not understood (use {_FORMS})") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(timezone.utc)


def parse_range(since: str | None, until: str | None, now: datetime | None = None,
                tz: tzinfo | None = None) -> tuple[datetime | None, datetime | None]:
    """``--since`` and ``--until`` read against the same ``now``; an until before the since is an error."""
    now = now or datetime.now(timezone.utc)
    start = parse_time(since, now, tz) if since is not None else None
    end = parse_time(until, now, tz) if until is not None else None
    if start is not None and end is not None and end < start:
        raise TimeSpecError(f"--until {until!r} is before --since {since!r}")
    return start, end
