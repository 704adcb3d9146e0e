"""Text from outside (journal lines, model answers, command output, anything stored from them) made safe to store
and to show. One escape spelling for all of it (``\\x00``, ``\\n``, ``\\u202e``, as systemd and Python spell them).

Storing: SQLite stores any Python string, PostgreSQL does not: ``text`` refuses NUL, JSONB refuses ``\\u0000``,
and no driver can encode a lone surrogate (what ``json.loads`` gives for an unpaired ``\\udc80``). Anyone who can
write to the journal chooses these characters, so text from outside passes through :func:`storable` (messages)
or :func:`one_line` (names: units, identifiers) before it reaches the store.

Showing: every interface that shows such text to a person passes it through :func:`printable` first: the CLIs
(then through Rich as plain ``Text``, never as markup), and the web and MCP outputs. JSON needs nothing more:
``json.dumps`` already writes every control character as ``\\u00XX``.
"""

from __future__ import annotations

import math
import re
from typing import Any

#: Characters that reorder what a reader sees without being seen (the "Trojan Source" set): the bidi embeddings,
#: overrides and isolates, and the marks. "restart \u202eecivres.xnign" reads as a different command.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: Invisible characters that make two different strings look the same (zero-width space, word joiner and the
#: invisible operators, the byte order mark). Joiners U+200C/U+200D stay: scripts and emoji need them.
INVISIBLES = frozenset("\u200b\u2060\u2061\u2062\u2063\u2064\ufeff")
#: What a terminal acts on: C0 (tab and newline excepted), DEL and C1. C1 matters on its own: U+009B is CSI and
#: U+009D is OSC for terminals that read 8-bit controls.
CONTROLS = frozenset(chr(c) for c in (*range(0x00, 0x20), *range(0x7F, 0xA0))) - {"\t", "\n"}
#: Lone surrogates (from ``errors="surrogateescape"``) cannot be encoded: printing one kills the process.
SURROGATES = frozenset(chr(c) for c in range(0xD800, 0xE000))


def _escape(ch: str) -> str:
    code = ord(ch)
    if ch == "\n":
        return "\\n"
    if ch == "\r":
        return "\\r"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


_MULTILINE = {ord(ch): _escape(ch) for ch in CONTROLS | BIDI_CONTROLS | INVISIBLES | SURROGATES}
_ONE_LINE = {**_MULTILINE, ord("\n"): _escape("\n")}


def printable(text: str, *, one_line: bool = False) -> str:
    """``text`` with nothing in it that can drive a terminal or hide what it says, and nothing dropped.

    Every control character except tab and newline (C0, DEL, C1), every bidi control and every invisible
    character is shown as a visible backslash escape: ESC as ``\\x1b``, CR as ``\\r``, CSI (C1) as ``\\x9b``,
    RIGHT-TO-LEFT OVERRIDE as ``\\u202e``. Escaped rather than dropped, so that an operator sees that a line
    carried a sequence and what it tried (``\\x1b]52;c;...`` is a clipboard write); ASCII, so that it survives any
    terminal encoding, and spelt as systemd and Python spell them. ``one_line`` shows newlines as ``\\n`` too, for
    text that must stay on its line.

    Escape sequences are not parsed: escaping their introducers (ESC and the C1 controls, ST and BEL included)
    disarms every ESC, CSI, OSC, DCS, APC, PM and SOS sequence whole, payload and all, whatever its grammar, even
    when it arrives split over several chunks of a stream. What remains of one is printable text.

    The result contains no C0 but tab (and newline unless ``one_line``), no DEL, C1, bidi control, invisible or
    lone surrogate; text without them comes back unchanged, so ``printable(printable(t)) == printable(t)``.
    Not markup-safe: Rich readers take it as ``rich.text.Text``, never as a markup string.
    """
    return text.translate(_ONE_LINE if one_line else _MULTILINE)


#: What no backend stores as text: NUL (PostgreSQL text and JSONB) and lone surrogates (not encodable as UTF-8).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
#: Fast path for names: printable ASCII needs no look at each character.
_NOT_PLAIN = re.compile(r"[^\x20-\x7e]")


def storable(text: str) -> str:
    """``text`` with NUL and lone surrogates written as visible escapes (``\\x00``, ``\\udc80``); all else kept,
    newlines and tabs too (a multi-line message stays multi-line)."""
    return _UNSTORABLE.sub(lambda m: _escape(m.group()), text)


def one_line(text: str) -> str:
    """``text`` as one printable line: every character that is not printable (newline, tab, carriage return,
    other control characters, Unicode line and paragraph separators, bidi overrides, lone surrogates) written as
    an escape. Printable non-ASCII text is kept. The result is storable too."""
    if not _NOT_PLAIN.search(text):
        return text
    return _NOT_PLAIN.sub(lambda m: m.group() if m.group().isprintable() else _escape(m.group()), text)


def cap(text: str, limit: int) -> str:
    """At most ``limit`` characters, the cut shown with an ellipsis (a column such as ``unit`` is VARCHAR(255):
    PostgreSQL refuses a longer value, SQLite would keep it)."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def storable_value(value: Any, *, names: bool = False, limit: int | None = None) -> Any:
    """A JSON value every backend's JSON column takes: strings made storable (``names``: one printable line,
    ``limit``: capped), keys too; NaN and infinities (refused by JSONB) become None; anything else becomes its
    string."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        text = one_line(value) if names else storable(value)
        return cap(text, limit) if limit is not None else text
    if isinstance(value, dict):
        return {storable_value(str(k), names=names, limit=limit): storable_value(v, names=names, limit=limit)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable_value(v, names=names, limit=limit) for v in value]
    return storable_value(str(value), names=names, limit=limit)
