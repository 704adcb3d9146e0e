"""Prompts are files (macha/llm/prompts/*.j2); what several of them say alike (the untrusted-data rule's opening,
the catalog listing) is a partial in prompts/partials/, included by path from the one loader below. Untrusted
text enters them only through fence()."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

PROMPTS = Path(__file__).with_name("prompts")
_env = Environment(loader=FileSystemLoader(PROMPTS), undefined=StrictUndefined, autoescape=False,
                   keep_trailing_newline=True)
OPEN, CLOSE = "<<<DATA {label}>>>", "<<<END DATA>>>"


def fence(label: str, text: str) -> str:
    """Wrap untrusted text in the data markers; markers inside it are defused so it cannot close the fence."""
    safe = text.replace("<<<", "‹‹‹").replace(">>>", "›››")
    clean_label = "".join(c for c in label if c.isalnum() or c in " _-")[:40]
    return f"{OPEN.format(label=clean_label)}\n{safe}\n{CLOSE}"


def render(name: str, **values: Any) -> str:
    return _env.get_template(f"{name}.j2").render(**values).strip() + "\n"
