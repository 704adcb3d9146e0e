"""Row ids as people type them: what a command line, a web form or an MCP call may pass as an id."""

from __future__ import annotations

#: Every row id is a signed 64-bit integer (SQLite INTEGER, PostgreSQL BIGINT) counted from 1. A larger number
#: does not name a row, and handing it to the database fails in the driver (SQLite: OverflowError), not with
#: "no such row".
MAX_ID = 2**63 - 1


def parse_id(text: str | int, what: str = "row") -> int:
    """The id in ``text``, or ValueError naming it (``what`` names the kind of row): a whole number from 1 to
    MAX_ID."""
    try:
        value = text if isinstance(text, int) and not isinstance(text, bool) else int(str(text).strip(), 10)
    except ValueError:
        raise ValueError(f"{what} id {str(text)[:40]!r} is not a whole number") from None
    if not 1 <= value <= MAX_ID:
        shown = str(value) if len(str(value)) <= 40 else f"{str(value)[:20]}...({len(str(value))} digits)"
        raise ValueError(f"no {what} has id {shown}: ids are whole numbers from 1 to {MAX_ID}")
    return value
