"""sarCollectFrequency and the like: systemd calendar specs as Celery crontabs, and the specs refused clearly."""

from __future__ import annotations

import pytest
from celery.schedules import crontab

from macha.core.calendar import calendar_to_crontab


@pytest.mark.parametrize(("spec", "kwargs", "minutes", "hours"), [
    ("*:00/10", {"minute": "*/10", "hour": "*"}, set(range(0, 60, 10)), set(range(24))),
    ("*:0/5", {"minute": "*/5", "hour": "*"}, set(range(0, 60, 5)), set(range(24))),
    ("*:05/10", {"minute": "5-59/10", "hour": "*"}, set(range(5, 60, 10)), set(range(24))),
    ("hourly", {"minute": "0", "hour": "*"}, {0}, set(range(24))),
    ("*:15", {"minute": "15", "hour": "*"}, {15}, set(range(24))),
    ("daily", {"minute": "0", "hour": "0"}, {0}, {0}),
    ("*-*-* *:00/10:00", {"minute": "*/10", "hour": "*"}, set(range(0, 60, 10)), set(range(24))),
    (" *:00,30 ", {"minute": "0,30", "hour": "*"}, {0, 30}, set(range(24))),
    ("08..17:00/20", {"minute": "*/20", "hour": "8-17"}, {0, 20, 40}, set(range(8, 18))),
    ("02:30:00", {"minute": "30", "hour": "2"}, {30}, {2}),
    ("*:*", {"minute": "*", "hour": "*"}, set(range(60)), set(range(24))),
])
def test_calendar_specs_become_crontabs(spec: str, kwargs: dict, minutes: set, hours: set) -> None:
    got = calendar_to_crontab(spec)
    assert got == kwargs
    schedule = crontab(**got)
    assert schedule.minute == minutes and schedule.hour == hours


def test_calendar_forms_beyond_weekly_and_monthly_shorthands() -> None:
    assert crontab(**calendar_to_crontab("weekly")).day_of_week == {1}
    assert crontab(**calendar_to_crontab("monthly")).day_of_month == {1}


@pytest.mark.parametrize(("spec", "message"), [
    ("", "empty"),
    ("Mon *:00", "weekdays and time zones are not supported"),
    ("*:00 UTC", "weekdays and time zones are not supported"),
    ("2024-01-01 00:00", "only every day"),
    ("*:00:30", "seconds must be 00"),
    ("*:61", "outside 0..59"),
    ("24:00", "outside 0..23"),
    ("*:00/0", "step in '00/0' must be at least 1"),
    ("*:~5", "is not supported"),
    ("every ten minutes", "weekdays and time zones are not supported"),
    ("10m", "HOUR:MINUTE"),
])
def test_unsupported_calendar_specs_are_refused_clearly(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match="calendar spec") as err:
        calendar_to_crontab(spec)
    assert message in str(err.value)
