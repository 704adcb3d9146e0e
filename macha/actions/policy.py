"""Autonomy level x catalog risk -> execute | queue for approval | record | (refusals come from validation).

The table is the whole policy. It is consulted when an action is proposed, again when a human approves it, and
again in the task that executes it, because the autonomy level may have changed in between.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from macha.core.risk import RISK_RANK, RISKS, Risk


class Verdict(StrEnum):
    EXECUTE = "execute"
    QUEUE = "queue"
    RECORD = "record"
    REFUSE = "refuse"


#: The highest risk each level runs without a human; None: nothing runs. Critical is never in reach.
RUNS_UP_TO: dict[str, Risk | None] = {
    "observe": None,
    "suggest": Risk.READ_ONLY,
    "auto-safe": Risk.LOW,
    "auto-full": Risk.MEDIUM,
}


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str


def decide(level: str, risk: Risk | str | None) -> Decision:
    """``risk``: a Risk, or its string as stored with an action; anything else (None too) is a ValueError."""
    if level not in RUNS_UP_TO:
        raise ValueError(f"unknown autonomy level {level!r}")
    if risk not in RISK_RANK:
        raise ValueError(f"unknown risk {risk!r}")
    risk = Risk(risk)
    ceiling = RUNS_UP_TO[level]
    if ceiling is None:
        return Decision(Verdict.RECORD, "autonomy level observe: nothing runs; the proposal is recorded")
    if risk.rank <= ceiling.rank:
        return Decision(Verdict.EXECUTE, f"autonomy level {level} runs {_upto(ceiling)} actions; this one is {risk}")
    return Decision(Verdict.QUEUE, f"autonomy level {level} runs {_upto(ceiling)} actions; this one is {risk}: "
                                   "it needs an operator's approval")


def may_run(level: str, risk: Risk | str | None, *, approved: bool) -> Decision:
    """At approval and execution time: may this action run now? Approved actions may run unless observe."""
    decision = decide(level, risk)
    if decision.verdict is Verdict.EXECUTE:
        return decision
    if decision.verdict is Verdict.QUEUE and approved:
        return Decision(Verdict.EXECUTE, f"approved by an operator; autonomy level {level} allows it with approval")
    if decision.verdict is Verdict.QUEUE:
        return Decision(Verdict.REFUSE, f"autonomy level {level} no longer runs {risk} actions without approval")
    return Decision(Verdict.REFUSE, f"autonomy level {level}: nothing runs, approved or not")


def _upto(ceiling: Risk) -> str:
    return "/".join(RISKS[: ceiling.rank + 1])
