"""Structured review output. A model fills it (validated) or the rules reviewer does.

Proposed actions carry a catalog name and arguments only (macha/actions/schemas.py): risk is the catalog's to set,
never the reviewer's.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from macha.actions.schemas import ProposedAction
from macha.core.severity import Severity
from macha.core.states import ReviewStatus

# The model-facing schema lists the values in place (no $ref to a definition with its docstring), as it always did.
ReviewStatusField = Annotated[ReviewStatus, WithJsonSchema(
    {"enum": [s.value for s in ReviewStatus], "title": "Status", "type": "string"})]
IssueSeverity = Annotated[Severity, WithJsonSchema(
    {"enum": [s.value for s in Severity], "title": "Severity", "type": "string"})]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReviewIssue(_Strict):
    title: str = Field(max_length=300)
    severity: IssueSeverity
    subsystem: str = Field(max_length=64)
    evidence_event_ids: list[int] = Field(default_factory=list, max_length=50)
    occurrences: int = Field(1, ge=1)


class ReviewReport(_Strict):
    status: ReviewStatusField
    summary: str = Field(max_length=4000)
    issues: list[ReviewIssue] = Field(default_factory=list, max_length=50)
    patterns: list[str] = Field(default_factory=list, max_length=20)
    proposed_actions: list[ProposedAction] = Field(default_factory=list, max_length=20)
    should_escalate: bool = False
    escalation_reason: str | None = None
