"""The one sanitiser for text from logs and models (macha.core.text.printable), its Rich wrapper, and row ids."""

from __future__ import annotations

import io

import pytest
from helpers.hostile_text import FORBIDDEN, HOSTILE
from hypothesis import example, given
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table

from macha.cli.common import plain
from macha.core.ids import MAX_ID, parse_id
from macha.core.text import BIDI_CONTROLS, CONTROLS, INVISIBLES, SURROGATES, printable

UNSAFE = CONTROLS | BIDI_CONTROLS | INVISIBLES | SURROGATES
# Text weighted towards what matters: controls, escape-sequence pieces, bidi, markup brackets.
tricky = st.lists(st.one_of(
    st.characters(codec=None),
    st.sampled_from(sorted(UNSAFE) + ["\x1b[", "\x1b]", "[", "]", "\\", "/", "\t", "\n"]),
), max_size=200).map("".join)


@given(tricky)
@example("\x1b[2J\x1b]52;c;AAAA\x07\x9b31m\u202e")
def test_nothing_that_drives_a_terminal_survives(text: str) -> None:
    out = printable(text)
    assert not set(out) & UNSAFE
    assert not any(c < " " and c not in "\t\n" for c in out) and not any("\x7f" <= c <= "\x9f" for c in out)
    one = printable(text, one_line=True)
    assert "\n" not in one and not set(one) & UNSAFE


@given(tricky)
def test_idempotent(text: str) -> None:
    once = printable(text)
    assert printable(once) == once
    assert printable(printable(text, one_line=True), one_line=True) == printable(text, one_line=True)


@given(st.text(st.characters(codec=None).filter(lambda c: c not in UNSAFE), max_size=200))
@example("restart nginx.service: Failed with result 'exit-code'.\n\tat pid 1 — ok ✓ 日本語 \u200d")
def test_plain_printable_text_is_unchanged(text: str) -> None:
    assert printable(text) == text


@given(tricky)
def test_nothing_is_dropped(text: str) -> None:
    # Every character is kept or replaced by an escape at least as long: an operator sees that something was there.
    out = printable(text)
    assert len(out) >= len(text)
    assert len(out) == len(text) + sum(len(printable(c)) - 1 for c in text)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_corpus_is_shown_escaped(name: str) -> None:
    raw, shown = HOSTILE[name]
    assert printable(raw) == shown
    assert not any(f in shown for f in FORBIDDEN)


def test_one_line_shows_newlines() -> None:
    assert printable("a\nb\tc") == "a\nb\tc"
    assert printable("a\nb\tc", one_line=True) == "a\\nb\tc"


def _render(*renderables: object, terminal: bool = False) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=200, force_terminal=terminal, color_system="truecolor" if terminal else None)
    for r in renderables:
        console.print(r)
    return buf.getvalue()


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_plain_is_never_markup_and_never_a_sequence(name: str) -> None:
    raw, shown = HOSTILE[name]
    table = Table()
    table.add_column("Message")
    table.add_row(plain(raw))
    out = _render(plain(raw), table)
    assert out.count(shown) == 2
    # On a real terminal Rich adds its own styles (CSI ... m) and nothing else: no OSC (title, link, clipboard).
    styled = _render(plain(raw, "bold"), terminal=True)
    assert shown in styled and "\x1b]" not in styled and "\x1b[2J" not in styled and "\x9b" not in styled


@given(st.integers(min_value=1, max_value=MAX_ID))
def test_ids_in_range_parse(n: int) -> None:
    assert parse_id(str(n)) == n == parse_id(f" {n} ")


@given(st.one_of(st.integers(max_value=0), st.integers(min_value=MAX_ID + 1)))
def test_ids_out_of_range_are_refused_naming_them(n: int) -> None:
    with pytest.raises(ValueError, match="ids are whole numbers from 1 to 9223372036854775807") as exc:
        parse_id(str(n), "action")
    assert str(exc.value).startswith("no action has id ") and "\n" not in str(exc.value)
    if len(str(n)) <= 40:
        assert f"id {n}:" in str(exc.value)


@pytest.mark.parametrize("text", ["abc", "1.5", "", "0x10", "\x1b[2J"])
def test_ids_that_are_not_numbers(text: str) -> None:
    with pytest.raises(ValueError, match="is not a whole number"):
        parse_id(text, "action")


def test_a_huge_id_is_named_short() -> None:
    with pytest.raises(ValueError) as exc:
        parse_id("9" * 4000, "action")
    assert len(str(exc.value)) < 200 and "4000 digits" in str(exc.value)


def test_core_imports_nothing_from_the_rest_of_macha() -> None:
    import ast
    from pathlib import Path

    import macha.core

    for path in Path(macha.core.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            assert not [n for n in names if n.split(".")[0] == "macha" and not n.startswith("macha.core")], path
