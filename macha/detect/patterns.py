"""The journal pattern catalog, loaded from data (patterns.toml), and the matcher."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from macha.errors import ConfigError

Severity = Literal["critical", "high", "medium", "low", "info"]
SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "info")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}  # 0 is the worst

BUILTIN = Path(__file__).with_name("patterns.toml")


@dataclass(frozen=True)
class Pattern:
    id: str
    severity: str
    subsystem: str
    description: str
    regex: re.Pattern[str]
    examples: tuple[str, ...] = field(default=())


def load_catalog(path: Path = BUILTIN) -> list[Pattern]:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"pattern file {path}: {exc}") from None
    patterns = []
    for i, item in enumerate(data.get("pattern", [])):
        pid = item.get("id") or f"#{i + 1}"
        try:
            severity = item["severity"]
            if severity not in SEVERITY_RANK:
                raise ConfigError(f"pattern {pid!r} in {path}: severity {severity!r} is not one of {', '.join(SEVERITIES)}")
            patterns.append(
                Pattern(
                    id=item["id"],
                    severity=severity,
                    subsystem=item.get("subsystem", "other"),
                    description=item.get("description", item["id"]),
                    regex=re.compile(item["regex"]),
                    examples=tuple(item.get("examples", ())),
                )
            )
        except KeyError as exc:
            raise ConfigError(f"pattern {pid!r} in {path}: missing key {exc.args[0]!r}") from None
        except re.error as exc:
            raise ConfigError(f"pattern {pid!r} in {path}: bad regex: {exc}") from None
    return patterns


class Matcher:
    """Finds the catalog patterns a message matches."""

    def __init__(self, patterns: list[Pattern]):
        self.patterns = patterns

    def match(self, message: str) -> list[Pattern]:
        return [p for p in self.patterns if p.regex.search(message)]


_default: Matcher | None = None


def default_matcher() -> Matcher:
    global _default
    if _default is None:
        _default = Matcher(load_catalog())
    return _default
