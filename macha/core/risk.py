"""Risk: how much harm running a catalog action can do. The catalog sets it (a proposer's claim is ignored), the
policy table weighs it against the autonomy level, and the approvals and the CLIs show it.

A ``Risk`` is a ``str`` (a StrEnum): the catalog file, the database column and JSON carry the same strings.
"""

from __future__ import annotations

from enum import StrEnum


class Risk(StrEnum):
    """From the least to the most: the order of the members is the rank (0 is read-only)."""

    READ_ONLY = "read-only"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for read-only, up to 4 for critical: a higher rank is riskier."""
        return RISK_RANK[self]


#: Every risk, the least first.
RISKS: tuple[Risk, ...] = tuple(Risk)
#: A risk (member or its string) to its rank; 0 is read-only.
RISK_RANK: dict[str, int] = {r.value: rank for rank, r in enumerate(RISKS)}
