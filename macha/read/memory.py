"""Semantic memory search (Chroma) for the interfaces: the caller opens the memory once (pipeline.memory_for) and
passes its Recall; NoMemory answers with why there is nothing."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from macha.context.recall import Recall
from macha.read.errors import ReadError

Collection = Literal["issues", "decisions", "config_files", "knowledge", "systems", "relationships"]


class MemoryQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=500)
    collection: Collection = "issues"
    k: int = Field(5, ge=1, le=20)
    host: str | None = Field(None, max_length=255)


class MemoryHit(BaseModel):
    id: str
    collection: str
    distance: float
    #: untrusted: stored from logs, reviews and config files
    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)


def search(recall: Recall, q: MemoryQuery) -> list[MemoryHit]:
    """The nearest records; ReadError saying why when semantic memory is not there."""
    if recall.absent is not None:
        raise ReadError(recall.absent)
    where = {"hostname": q.host} if q.host else None
    hits = recall.similar(q.collection, q.query, q.k, where)
    return [MemoryHit(id=str(h.id), collection=h.collection or q.collection, distance=float(h.distance),
                      text=str(h.text), metadata=dict(h.metadata or {})) for h in hits]
