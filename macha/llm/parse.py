"""Model answers are untrusted text: turn one into a validated pydantic object, or say plainly why not."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)
_THINK = re.compile(r"^\s*<think>.*?</think>\s*", re.S)
_CODE_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)


def parse_json_as(text: str, model: type[M]) -> tuple[M | None, str | None]:
    """The answer as ``model``, or None and the reason (for the repair prompt and the stored error)."""
    body = _THINK.sub("", text)
    m = _CODE_FENCE.match(body)
    if m:
        body = m[1]
    try:
        # strict=False: small models put raw newlines inside strings; that is form, not content.
        data: Any = json.loads(body, strict=False)
    except ValueError as exc:
        return None, f"not valid JSON ({exc.msg} at character {exc.pos})"
    if not isinstance(data, dict):
        return None, f"the JSON is a {type(data).__name__}, not an object"
    try:
        return model.model_validate(data), None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ())) or "answer"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return None, f"does not match the schema: {where}: {err.get('msg')}{more}"
