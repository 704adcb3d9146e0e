"""What a read cannot answer, in words an operator (or an MCP client) can act on."""

from __future__ import annotations

from macha.core.errors import MachaError


class ReadError(MachaError):
    """A query that cannot be answered as asked (a bad filter, a bad time)."""


class NotFound(ReadError):
    """Something asked for by name or id that the store does not hold."""


class UnknownHost(NotFound):
    def __init__(self, hostname: str, known: list[str] | None = None):
        shown = hostname if len(hostname) <= 80 else hostname[:80] + "..."
        hint = f" (known: {', '.join(known[:10])}{', ...' if len(known) > 10 else ''})" if known else \
            " (no host has been checked yet)" if known is not None else ""
        super().__init__(f"no host named {shown!r} in the store{hint}")
        self.hostname = hostname
