"""Prompts are files (macha/llm/prompts/*.j2); what several of them say alike (the untrusted-data rule, the
catalog listing) is a partial in prompts/partials/, included by path from the one loader below. Untrusted text
enters them only through fence() (or fence_lines(), for text shown line by line)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

PROMPTS = Path(__file__).with_name("prompts")
OPEN, CLOSE = "<<<DATA {label}>>>", "<<<END DATA>>>"
#: Every character str.splitlines breaks at. Inside one line of fenced lines they are shown escaped: text from a
#: log or a model must not start lines (a fake section, a fake numbered item) of its own.
_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def fence(label: str, text: str) -> str:
    """Wrap untrusted text in the data markers; markers inside it are defused so it cannot close the fence."""
    safe = text.replace("<<<", "‹‹‹").replace(">>>", "›››")
    clean_label = "".join(c for c in label if c.isalnum() or c in " _-")[:40]
    return f"{OPEN.format(label=clean_label)}\n{safe}\n{CLOSE}"


def _one_line(line: str) -> str:
    """The line with every line break in it escaped (\\n, \\x85, \\u2028...)."""
    return _LINE_BREAKS.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                            else f"\\u{ord(m.group()):04x}", line)


def fence_lines(label: str, lines: Iterable[str]) -> str:
    """Untrusted lines, one per line (breaks inside a line escaped), fenced as data."""
    return fence(label, "\n".join(_one_line(line) for line in lines))


@cache
def _env() -> Any:
    # Jinja on first render, not at import: a check (and a fleet's collector) imports fence() through the context
    # window's module and never renders a prompt.
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    return Environment(loader=FileSystemLoader(PROMPTS), undefined=StrictUndefined, autoescape=False,
                       keep_trailing_newline=True)


def render(name: str, **values: Any) -> str:
    return _env().get_template(f"{name}.j2").render(**values).strip() + "\n"
