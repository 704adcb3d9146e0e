"""Commands whose layer is not built yet: one clear line and exit code 2."""

from __future__ import annotations

import sys

_PENDING = {
    "macha-issues": "issue tracking is not yet available",
}


def _stub(prog: str) -> None:
    print(f"{prog}: not yet available: {_PENDING[prog]}", file=sys.stderr)
    sys.exit(2)


def issues() -> None:
    _stub("macha-issues")
