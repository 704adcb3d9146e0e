"""Structured review output. A model fills it (validated) or the rules reviewer does.

Proposed actions carry a catalog name and arguments only: risk is the catalog's to set, never the reviewer's.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

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


class ProposedAction(_Strict):
    action: str = Field(max_length=64)
    arguments: dict[str, Any] = Field(default_factory=dict)
    reason: str = Field("", max_length=500)


class ReviewReport(_Strict):
    status: ReviewStatusField
    summary: str = Field(max_length=4000)
    issues: list[ReviewIssue] = Field(default_factory=list, max_length=50)
    patterns: list[str] = Field(default_factory=list, max_length=20)
    proposed_actions: list[ProposedAction] = Field(default_factory=list, max_length=20)
    should_escalate: bool = False
    escalation_reason: str | None = None


#: Length limits become grammar rules in model servers: llama.cpp-based ones nest one rule per character, and a
#: maxLength of 4000 broke llama-cpp-python's server. The model-facing schema keeps lengths, capped at
#: MODEL_MAX_LENGTH, and list lengths at MODEL_MAX_ITEMS (still bounds: a small model that rambles is cut, not let
#: run to the end of its context); validation still enforces the real limits.
MODEL_MAX_LENGTH = 800
MODEL_MAX_ITEMS = 10
_CAPS = {"maxLength": MODEL_MAX_LENGTH, "maxItems": MODEL_MAX_ITEMS}


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    def cap(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: (min(v, _CAPS[k]) if k in _CAPS else cap(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [cap(v) for v in node]
        return node

    return cap(model.model_json_schema())


class Evidence(_Strict):
    event_ids: list[int] = Field(default_factory=list, max_length=50)
    metric_refs: list[str] = Field(default_factory=list, max_length=20)


class ConfigSuggestion(_Strict):
    """For a human to read and apply: Macha never applies configuration changes."""

    description: str = Field(max_length=1000)
    diff: str = Field("", max_length=8000)


class MetaProposal(BaseModel):
    """A proposal as the meta model writes it. Extra fields (a claimed "risk"...) do not spoil the analysis: the
    intake drops them, and says so in the audit log."""

    model_config = ConfigDict(extra="allow")
    action: str = Field(max_length=64)
    arguments: dict[str, Any] = Field(default_factory=dict)
    reason: str = Field("", max_length=500)


class MetaAnalysis(_Strict):
    diagnosis: str = Field(max_length=4000)
    root_cause: str = Field(max_length=4000)
    evidence: Evidence = Field(default_factory=Evidence)
    proposed_actions: list[MetaProposal] = Field(default_factory=list, max_length=10)
    config_suggestions: list[ConfigSuggestion] = Field(default_factory=list, max_length=10)
    rollback_plan: str = Field("", max_length=4000)
    confidence: float = Field(ge=0.0, le=1.0)
