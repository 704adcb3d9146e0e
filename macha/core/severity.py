"""Severity: how bad one event, issue or finding is. One vocabulary for the detectors, the reviewers, the model's
schemas and the settings.

A ``Severity`` is a ``str`` (a StrEnum): pydantic fields typed with it accept the same strings, JSON carries the
same strings and the database stores the same strings.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, get_args


class Severity(StrEnum):
    """From the worst to the least: the order of the members is the rank (0 is the worst)."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """0 for critical, up to 4 for info: a smaller rank is worse."""
        return SEVERITY_RANK[self]


#: Every severity, the worst first.
SEVERITIES: tuple[Severity, ...] = tuple(Severity)
#: A severity (member or its string) to its rank; 0 is the worst.
SEVERITY_RANK: dict[str, int] = {s.value: rank for rank, s in enumerate(SEVERITIES)}


def worst(severities: object) -> Severity:
    """The worst of some severities (members or their strings)."""
    return Severity(min(severities, key=SEVERITY_RANK.__getitem__))  # type: ignore[call-overload]


#: What a detector setting may raise (thresholds, error rates): any severity but "info", which only notes.
RaisedSeverity = Literal["critical", "high", "medium", "low"]
assert set(get_args(RaisedSeverity)) == set(SEVERITIES) - {Severity.INFO}
