"""Commands whose layer is not built yet: one clear line and exit code 2. (None at the moment: macha-logs,
macha-issues and macha-systems have landed; kept for the next command announced before it is built.)"""

from __future__ import annotations

import sys

_PENDING: dict[str, str] = {}


def _stub(prog: str) -> None:
    print(f"{prog}: not yet available: {_PENDING[prog]}", file=sys.stderr)
    sys.exit(2)
