"""Commands whose layer is not built yet: one clear line and exit code 2."""

from __future__ import annotations

import sys

_PENDING = {
    "macha-logs": "log browsing is not yet available; use macha-check for the latest events",
    "macha-systems": "the system registry is not yet available",
}


def _stub(prog: str) -> None:
    print(f"{prog}: not yet available: {_PENDING[prog]}", file=sys.stderr)
    sys.exit(2)


def logs() -> None:
    _stub("macha-logs")


def systems() -> None:
    _stub("macha-systems")
