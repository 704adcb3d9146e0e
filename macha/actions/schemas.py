"""The action intake's input: a catalog action name and its arguments, as a reviewer proposes it.

Risk is the catalog's to set, never the proposer's, so a proposal carries none. The review report (macha/review/)
lists these; the intake (proposals.py) validates raw proposals into them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ProposedAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: str = Field(max_length=64)
    arguments: dict[str, Any] = Field(default_factory=dict)
    reason: str = Field("", max_length=500)
