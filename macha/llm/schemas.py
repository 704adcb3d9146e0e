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


#: Constraints a model server turns into huge grammars (a maxLength of 4000 is 4000 nested rules in llama.cpp's
#: grammar); the model-facing schema leaves them out and validation still enforces them.
_GRAMMAR_HEAVY = ("maxLength", "maxItems", "minLength", "minItems")


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in _GRAMMAR_HEAVY}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return strip(model.model_json_schema())
