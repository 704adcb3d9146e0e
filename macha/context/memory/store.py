"""The six collections and their generic operations: remember, similar, count."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict
from chromadb.api import ClientAPI
from chromadb.api.types import Documents, EmbeddingFunction

from macha.context.memory.backend import Backend
from macha.context.memory.errors import MemoryUnavailable, guard
from macha.context.memory.metadata import Scalar, clean_metadata

COLLECTIONS = ("systems", "relationships", "issues", "decisions", "config_files", "knowledge")
# Chroma's HNSW defaults (flush to disk every 1000 records) plus cosine space; tests lower sync_threshold so
# that index flushes, where processes used to lose each other's vectors, happen with a few records.
HNSW: dict[str, Any] = {"space": "cosine"}
_BATCH = 64


class Hit(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    text: str
    metadata: dict[str, Any]
    distance: float
    collection: str = ""


def _where(where: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Several plain conditions mean all of them: Chroma wants them spelled as $and."""
    if not where:
        return None
    if len(where) == 1 or any(k.startswith("$") for k in where):
        return dict(where)
    return {"$and": [{k: v} for k, v in where.items()]}


class MemoryStore:
    """The collections on one backend with one embedding: remember, similar, count."""

    #: Semantic memory is there (context.recall.Recall: NoMemory says why it is not).
    absent: str | None = None

    def __init__(self, backend: Backend, embedding: EmbeddingFunction[Documents], chunk_chars: int) -> None:
        self._backend = backend
        self._ef = embedding
        self.chunk_chars = chunk_chars
        self._cols: dict[str, Any] = {}
        self._epoch = -1
        with backend.session(write=False) as client:
            self._collections(client)

    def _collections(self, client: ClientAPI) -> dict[str, Any]:
        if self._epoch != self._backend.epoch:
            with guard("opening the collections"):
                try:
                    self._cols = {
                        name: client.get_or_create_collection(name, embedding_function=self._ef,
                                                              configuration={"hnsw": dict(HNSW)})
                        for name in COLLECTIONS
                    }
                except ValueError as exc:
                    if "conflict" not in str(exc).lower():
                        raise
                    raise MemoryUnavailable(
                        f"semantic memory {self._backend.path or self._backend.url} was built with another embedding "
                        f"than {self._ef.name()!r}; set the embedding back, or move the store away to start anew"
                    ) from exc
            self._epoch = self._backend.epoch
        return self._cols

    @contextmanager
    def _collection(self, name: str, write: bool) -> Iterator[Any]:
        if name not in COLLECTIONS:
            raise ValueError(f"unknown memory collection {name!r}; one of {', '.join(COLLECTIONS)}")
        with self._backend.session(write) as client:
            yield self._collections(client)[name]

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        with guard("embedding"):
            return [np.asarray(v, dtype=np.float32).tolist() for v in self._ef(list(texts))]

    def _upsert(self, collection: str, ids: list[str], docs: list[str], metas: list[dict[str, Scalar]]) -> None:
        for start in range(0, len(ids), _BATCH):
            part = slice(start, start + _BATCH)
            # Embed outside the lock: the other workers wait only for the write itself.
            vectors = self.embed(docs[part])
            with self._collection(collection, write=True) as col, guard(f"writing to {collection}"):
                col.upsert(ids=ids[part], embeddings=vectors, documents=docs[part],
                           metadatas=[m or None for m in metas[part]])

    def remember(self, collection: str, id: str, text: str, metadata: Mapping[str, Any] | None = None) -> None:
        """Upsert one record: the same id again replaces it."""
        self._upsert(collection, [id], [text], [clean_metadata(metadata)])

    def similar(self, collection: str, query_text: str, k: int = 5,
                where: Mapping[str, Any] | None = None) -> list[Hit]:
        return self._query(collection, self.embed([query_text]), k, where)[0] if k > 0 else []

    def _query(self, collection: str, vectors: list[list[float]], k: int,
               where: Mapping[str, Any] | None) -> list[list[Hit]]:
        with self._collection(collection, write=False) as col, guard(f"searching {collection}"):
            res = col.query(query_embeddings=vectors, n_results=k, where=_where(where),
                            include=["documents", "metadatas", "distances"])
        return [
            [Hit(id=i, text=d or "", metadata=dict(m or {}), distance=float(dist), collection=collection)
             for i, d, m, dist in zip(ids, docs, metas, dists)]
            for ids, docs, metas, dists in zip(res["ids"], res["documents"], res["metadatas"], res["distances"])
        ]

    def count(self, collection: str) -> int:
        with self._collection(collection, write=False) as col, guard(f"counting {collection}"):
            return int(col.count())
