"""--since / --until in journalctl's forms."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from macha.core.timespec import TimeSpecError, parse_range, parse_time

NOW = datetime(2026, 11, 29, 18, 30, 15, tzinfo=timezone.utc)
PLUS2 = timezone(timedelta(hours=2))


@pytest.mark.parametrize("text, expected", [
    ("now", NOW),
    ("-1h", NOW - timedelta(hours=1)),
    ("-30min", NOW - timedelta(minutes=30)),
    ("-1h 30min", NOW - timedelta(hours=1, minutes=30)),
    ("-1h30m", NOW - timedelta(hours=1, minutes=30)),
    ("2d ago", NOW - timedelta(days=2)),
    ("+5min", NOW + timedelta(minutes=5)),
    ("-2w", NOW - timedelta(weeks=2)),
    ("-90s", NOW - timedelta(seconds=90)),
    ("2026-11-29T10:00:00Z", datetime(2026, 11, 29, 10, tzinfo=timezone.utc)),
    ("2026-11-29T10:00:00+01:00", datetime(2026, 11, 29, 9, tzinfo=timezone.utc)),
])
def test_forms(text: str, expected: datetime) -> None:
    assert parse_time(text, NOW, PLUS2) == expected


def test_local_times_and_days_are_read_in_the_given_zone() -> None:
    # 18:30 UTC is 20:30 at +02:00: that zone's today began at 22:00 UTC the day before.
    assert parse_time("today", NOW, PLUS2) == datetime(2026, 11, 28, 22, tzinfo=timezone.utc)
    assert parse_time("yesterday", NOW, PLUS2) == datetime(2026, 11, 27, 22, tzinfo=timezone.utc)
    assert parse_time("2026-11-29 10:00:00", NOW, PLUS2) == datetime(2026, 11, 29, 8, tzinfo=timezone.utc)
    assert parse_time("2026-11-29", NOW, PLUS2) == datetime(2026, 11, 28, 22, tzinfo=timezone.utc)
    assert parse_time("-1h", NOW, PLUS2).tzinfo is timezone.utc


@pytest.mark.parametrize("bad", ["", "   ", "-1 fortnight", "last tuesday", "-h", "2026-13-01", "1h", "x" * 100,
                                 "-1h; rm -rf /", "-99999999y"])
def test_bad_input_is_one_clear_error(bad: str) -> None:
    with pytest.raises(TimeSpecError) as err:
        parse_time(bad, NOW)
    msg = str(err.value)
    assert "\n" not in msg and ("use now, today" in msg or "100 years" in msg)


def test_until_before_since_is_refused() -> None:
    with pytest.raises(TimeSpecError, match="before --since"):
        parse_range("-1h", "-2h", NOW)
    assert parse_range("-2h", "-1h", NOW) == (NOW - timedelta(hours=2), NOW - timedelta(hours=1))
