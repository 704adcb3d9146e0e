"""Structured review output. A model fills it (validated) or the rules reviewer does.

Proposed actions carry a catalog name and arguments only: risk is the catalog's to set, never the reviewer's.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ReviewStatus = Literal["healthy", "degraded", "critical"]
IssueSeverity = Literal["critical", "high", "medium", "low", "info"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReviewIssue(_Strict):
    title: str = Field(max_length=300)
    severity: IssueSeverity
    subsystem: str = Field(max_length=64)
    evidence_event_ids: list[int] = Field(default_factory=list, max_length=50)
    occurrences: int = Field(1, ge=1)


class ProposedAction(_Strict):
    action: str = Field(max_length=64)
    arguments: dict[str, Any] = Field(default_factory=dict)
    reason: str = Field("", max_length=500)


class ReviewReport(_Strict):
    status: ReviewStatus
    summary: str = Field(max_length=4000)
    issues: list[ReviewIssue] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)
    proposed_actions: list[ProposedAction] = Field(default_factory=list)
    should_escalate: bool = False
    escalation_reason: str | None = None
