"""What a step of the pipeline asks to be sent next, as one typed value: the step decides, one dispatcher in
workers/ sends. It crosses no queue itself; the ids in it do."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from macha.core.states import LiveKind


class Notice(BaseModel):
    """A line for the live feed, sent after the step's commit: what was stored, for which host (ids, no records)."""

    kind: LiveKind
    host: str
    fields: dict[str, int | str | None] = Field(default_factory=dict)


class FollowUps(BaseModel):
    #: Actions the policy made ready: (action id, the host whose queue runs it).
    execute: list[tuple[int, str]] = Field(default_factory=list)
    #: Reviews to write to semantic memory.
    remember: list[int] = Field(default_factory=list)
    #: Escalations to send to Layer 4: (escalation id, kind: critical | escalation | background).
    escalate: list[tuple[int, str]] = Field(default_factory=list)
    #: Escalations no gpu worker took in time, for the review model to answer instead: (escalation id, kind).
    fallback: list[tuple[int, str]] = Field(default_factory=list)
    #: Hosts whose pending events go through context -> review, and why.
    review_hosts: list[str] = Field(default_factory=list)
    review_reason: str = "tick"
    #: What the pages and followers are told was stored (the live feed).
    announce: list[Notice] = Field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.execute or self.remember or self.escalate or self.fallback or self.review_hosts
                    or self.announce)

    def tell(self, kind: LiveKind, host: str, **fields: int | str | None) -> FollowUps:
        self.announce.append(Notice(kind=kind, host=host, fields=fields))
        return self


class StepRun(BaseModel):
    """A step's result (what its task returns, JSON) and what is to be sent after it."""

    result: dict[str, Any]
    follow_ups: FollowUps = Field(default_factory=FollowUps)
