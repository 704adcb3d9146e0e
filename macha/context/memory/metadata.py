"""Metadata values as Chroma takes them."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

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
