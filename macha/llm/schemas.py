"""What a model server is sent as the answer's schema: a pydantic model's JSON schema, its bounds capped.

The schemas themselves live with the layer that owns the answer: review (macha/review/schemas.py), meta
(macha/meta/schemas.py), the action intake's proposals (macha/actions/schemas.py).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

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
