"""What the layers above see of semantic memory: a Recall, which is either the open memory or NoMemory saying why
there is none (switched off, or it could not open). One value instead of a memory-or-None and a note beside it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class Recall(Protocol):
    #: Why nothing is recalled; None when semantic memory is there.
    absent: str | None

    def similar_issues(self, texts: Sequence[str], k: int = 5, hostname: str | None = None) -> list[Any]: ...

    def similar(self, collection: str, query_text: str, k: int = 5,
                where: Mapping[str, Any] | None = None) -> list[Any]: ...

    def remember(self, collection: str, id: str, text: str, metadata: Mapping[str, Any] | None = None) -> None: ...


@dataclass(frozen=True)
class NoMemory:
    """Semantic memory that is not there: recalls nothing, remembers nothing, and says why."""

    absent: str = "semantic memory is not used for this window"

    def similar_issues(self, texts: Sequence[str], k: int = 5, hostname: str | None = None) -> list[Any]:
        return []

    def similar(self, collection: str, query_text: str, k: int = 5,
                where: Mapping[str, Any] | None = None) -> list[Any]:
        return []

    def remember(self, collection: str, id: str, text: str, metadata: Mapping[str, Any] | None = None) -> None:
        return None
