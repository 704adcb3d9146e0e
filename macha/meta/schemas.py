"""Structured meta output: the analysis the meta model writes, validated.

Configuration changes are suggestions for a human; proposed actions go through the action intake like any other.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
