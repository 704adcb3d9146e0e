"""systemd OnCalendar expressions (the NixOS-style ``sarCollectFrequency``) as Celery crontab keyword arguments.

Vocabulary shared by config (which validates the setting) and the beat schedule (which uses it); plain strings in,
plain dicts out, so nothing here imports Celery or the rest of macha.
"""

from __future__ import annotations

import re

_SHORTHANDS: dict[str, dict[str, str]] = {
    "minutely": {"minute": "*", "hour": "*"},
    "hourly": {"minute": "0", "hour": "*"},
    "daily": {"minute": "0", "hour": "0"},
    "weekly": {"minute": "0", "hour": "0", "day_of_week": "1"},
    "monthly": {"minute": "0", "hour": "0", "day_of_month": "1"},
}


def _cron_field(part: str, what: str, top: int, spec: str) -> str:
    """One systemd time component (``*``, ``5``, ``00/10``, ``*/10``, ``1,31``, ``8..17``) as a crontab field."""
    out = []
    for item in part.split(","):
        m = re.fullmatch(r"(\*|\d{1,2}(?:\.\.\d{1,2})?)(?:/(\d{1,2}))?", item)
        if not m:
            raise ValueError(f"calendar spec {spec!r}: {what} {item!r} is not supported "
                             "(use *, N, N/STEP, N..M or a comma list)")
        base, step = m.group(1), m.group(2)
        if base == "*":
            lo, hi = 0, top
        elif ".." in base:
            lo, hi = (int(x) for x in base.split(".."))
        else:
            lo = int(base)
            # systemd: "N/STEP" repeats from N to the end of the range; a bare N is just N.
            hi = top if step else lo
        if not (0 <= lo <= hi <= top):
            raise ValueError(f"calendar spec {spec!r}: {what} {item!r} is outside 0..{top}")
        if step is not None and int(step) == 0:
            raise ValueError(f"calendar spec {spec!r}: {what} step in {item!r} must be at least 1")
        if base == "*" or (step and lo == 0 and hi == top):
            field_ = "*"
        elif lo == hi:
            field_ = str(lo)
        else:
            field_ = f"{lo}-{hi}"
        if step is not None:
            field_ += f"/{int(step)}"
        out.append(field_)
    return ",".join(out)


def calendar_to_crontab(spec: str) -> dict[str, str]:
    """celery.schedules.crontab keyword arguments for a systemd OnCalendar expression of the forms NixOS uses
    for sysstat's collection (``*:00/10``, ``*:0/5``, ``*:15``, ``hourly``, ``daily``, ``*-*-* *:00/10:00``).

    Only every-day schedules at whole minutes are supported; anything else raises ValueError naming the spec.
    Hours are read in Celery's timezone (UTC in Macha), where systemd would use local time.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("calendar spec is empty (expected e.g. '*:00/10')")
    raw = spec.strip()
    short = _SHORTHANDS.get(raw.lower())
    if short is not None:
        return dict(short)
    parts = raw.split()
    if len(parts) == 2 and "-" in parts[0] and ":" not in parts[0]:
        date, clock = parts
        if date != "*-*-*":
            raise ValueError(f"calendar spec {spec!r}: only every day ('*-*-*') is supported, not {date!r}")
    elif len(parts) == 1:
        clock = parts[0]
    else:
        raise ValueError(f"calendar spec {spec!r}: weekdays and time zones are not supported "
                         "(expected e.g. '*:00/10' or '*-*-* *:00/10:00')")
    fields = clock.split(":")
    if len(fields) not in (2, 3):
        raise ValueError(f"calendar spec {spec!r}: the time must be HOUR:MINUTE[:SECOND], got {clock!r}")
    if len(fields) == 3 and not re.fullmatch(r"0{1,2}", fields[2]):
        raise ValueError(f"calendar spec {spec!r}: seconds must be 00 (Celery schedules whole minutes)")
    return {"minute": _cron_field(fields[1], "minute", 59, spec), "hour": _cron_field(fields[0], "hour", 23, spec)}
