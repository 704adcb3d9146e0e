"""The journal pattern catalog, loaded from data: patterns.toml plus the operator's patternsFile.

Every regex must also compile for RE2 when google-re2 is installed (no look-around, no back-references), so that
the matcher (matcher.py) gives the same answers with either engine.
"""

from __future__ import annotations

import logging
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from macha.core.errors import ConfigError
from macha.core.severity import SEVERITIES, SEVERITY_RANK, Severity

log = logging.getLogger(__name__)

BUILTIN = Path(__file__).with_name("patterns.toml")

try:  # pragma: no cover - which branch runs depends on the machine
    import re2 as _re2
except ImportError:  # pragma: no cover
    _re2 = None


@dataclass(frozen=True)
class Pattern:
    id: str
    severity: Severity
    subsystem: str
    description: str
    regex: re.Pattern[str]
    examples: tuple[str, ...] = field(default=())


def _read(path: Path) -> list[dict]:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"pattern file {path} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"pattern file {path}: {exc}") from None
    items = data.get("pattern", [])
    if not isinstance(items, list):
        raise ConfigError(f"pattern file {path}: expected [[pattern]] tables")
    return items


def _pattern(item: dict, index: int, path: Path) -> Pattern:
    pid = item.get("id") if isinstance(item, dict) else None
    where = f"pattern {pid or f'#{index + 1}'!r} in {path}"
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected a table")
    try:
        severity = item["severity"]
        if severity not in SEVERITY_RANK:
            raise ConfigError(f"{where}: severity {severity!r} is not one of {', '.join(SEVERITIES)}")
        source = item["regex"]
        compiled = re.compile(source)
        if _re2 is not None:
            # Portable between the two engines: no look-around, no back-references.
            _re2.compile(source)
        return Pattern(
            id=item["id"],
            severity=Severity(severity),
            subsystem=item.get("subsystem", "other"),
            description=item.get("description", item["id"]),
            regex=compiled,
            examples=tuple(item.get("examples", ())),
        )
    except KeyError as exc:
        raise ConfigError(f"{where}: missing key {exc.args[0]!r}") from None
    except re.error as exc:
        raise ConfigError(f"{where}: bad regex: {exc}") from None
    except Exception as exc:  # re2.error: the regex works in Python only
        if _re2 is not None and isinstance(exc, _re2.error):
            raise ConfigError(f"{where}: regex not supported by RE2 (no look-around or back-references): "
                              f"{exc}") from None
        raise


def load_catalog(path: Path = BUILTIN) -> list[Pattern]:
    """Every pattern of one file, or a ConfigError naming the first bad one (used for the built-in catalog)."""
    return [_pattern(item, i, path) for i, item in enumerate(_read(path))]


def load_with_user(user_file: Path | None) -> tuple[list[Pattern], list[str]]:
    """The built-in catalog plus the operator's patterns. A bad user pattern is skipped and reported by id; the
    built-in ones and the user's good ones still load. A user pattern with a built-in id replaces it."""
    patterns = {p.id: p for p in load_catalog()}
    problems: list[str] = []
    if user_file is not None:
        try:
            items = _read(user_file)
        except ConfigError as exc:
            return list(patterns.values()), [str(exc)]
        for i, item in enumerate(items):
            try:
                p = _pattern(item, i, user_file)
            except ConfigError as exc:
                problems.append(str(exc))
                continue
            patterns[p.id] = p
    for problem in problems:
        log.error("%s (skipped; the other patterns are in use)", problem)
    return list(patterns.values()), problems
