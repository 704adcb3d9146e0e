"""The journal pattern catalog, loaded from data: patterns.toml and benign.toml plus the operator's patternsFile.

A file holds three kinds of table:
- ``[[pattern]]``: a line worth an event, with the severity of what it says happened;
- ``[[benign]]``: a line that looks alarming and is not (a floppy probe on a virtual machine, a database refusing
  connections while it starts). A line it names is kept below high, whatever pattern it also matches, and its
  event carries the reason;
- ``[[unnamed]]``: what to do with a line no pattern names, by its journal PRIORITY and optionally its words. A
  PRIORITY says how the writer logged the line, not what happened, so such a line is raised at most medium.

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
from macha.core.text import one_line

log = logging.getLogger(__name__)

BUILTIN = Path(__file__).with_name("patterns.toml")
BENIGN = Path(__file__).with_name("benign.toml")
#: The worst a known-benign line, or a line no pattern names, may be: below high.
BENIGN_CEILING = Severity.MEDIUM
UNNAMED_CEILING = Severity.MEDIUM

try:  # pragma: no cover - which branch runs depends on the machine
    import re2 as _re2
except ImportError:  # pragma: no cover
    _re2 = None


@dataclass(frozen=True)
class Pattern:
    """A ``[[pattern]]`` entry, or a ``[[benign]]`` one (``reason`` set): both run in the one matcher."""

    id: str
    severity: Severity
    subsystem: str
    description: str
    regex: re.Pattern[str]
    examples: tuple[str, ...] = field(default=())
    #: lines that must not fire this entry (the tests check them)
    not_examples: tuple[str, ...] = field(default=())
    #: why a known-benign line is not the alarm it looks like; None for a pattern
    reason: str | None = None

    @property
    def benign(self) -> bool:
        return self.reason is not None


@dataclass(frozen=True)
class UnnamedRule:
    """What a line that no pattern names gives: kept (a log event) and, with ``raise_event``, an event."""

    id: str
    severity: Severity
    description: str
    #: journal PRIORITY values it applies to; empty: any (a line without a PRIORITY too)
    priorities: frozenset[int] = frozenset()
    #: words the message must contain; None: any message
    regex: re.Pattern[str] | None = None
    raise_event: bool = False
    examples: tuple[str, ...] = field(default=())

    def applies(self, priority: int | None, message: str) -> bool:
        if self.priorities and priority not in self.priorities:
            return False
        return self.regex is None or self.regex.search(message) is not None


def read_tables(path: Path, what: str = "pattern file", kinds: tuple[str, ...] = ("pattern", "benign", "unnamed")
                ) -> dict:
    """A detection data file (patterns, correlation rules): its TOML, each of ``kinds`` a list of tables; any
    problem is one line naming the file."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{what} {path}: {one_line(str(exc))}") from None
    for kind in kinds:
        if not isinstance(data.get(kind, []), list):
            raise ConfigError(f"{what} {path}: expected [[{kind}]] tables")
    return data


def _compile(source: object, where: str) -> re.Pattern[str]:
    if not isinstance(source, str):
        raise ConfigError(f"{where}: regex must be a string")
    try:
        compiled = re.compile(source)
    except re.error as exc:
        raise ConfigError(f"{where}: bad regex: {exc}") from None
    if _re2 is not None:
        # Portable between the two engines: no look-around, no back-references.
        try:
            _re2.compile(source)
        except _re2.error as exc:
            raise ConfigError(f"{where}: regex not supported by RE2 (no look-around or back-references): "
                              f"{exc}") from None
    return compiled


def _severity(item: dict, where: str, default: str | None = None, ceiling: Severity | None = None) -> Severity:
    severity = item.get("severity", default)
    if severity is None:
        raise KeyError("severity")
    if severity not in SEVERITY_RANK:
        raise ConfigError(f"{where}: severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    if ceiling is not None and SEVERITY_RANK[severity] < ceiling.rank:
        raise ConfigError(f"{where}: severity {severity!r} is above {ceiling.value}, the most it may be")
    return Severity(severity)


def _lines(item: dict, key: str, where: str) -> tuple[str, ...]:
    value = item.get(key, ())
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: {key} must be a list of strings")
    return tuple(value)


def _entry(item: object, index: int, path: Path, kind: str) -> Pattern:
    pid = item.get("id") if isinstance(item, dict) else None
    where = f"{kind} {pid or f'#{index + 1}'!r} in {path}"
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected a table")
    try:
        if kind == "benign":
            reason = item["reason"]
            if not isinstance(reason, str) or not reason.strip():
                raise ConfigError(f"{where}: reason must say why the line is benign")
            severity = _severity(item, where, default="low", ceiling=BENIGN_CEILING)
        else:
            reason = None
            severity = _severity(item, where)
        return Pattern(
            id=item["id"],
            severity=severity,
            subsystem=item.get("subsystem", "other"),
            description=item.get("description", reason or item["id"]),
            regex=_compile(item["regex"], where),
            examples=_lines(item, "examples", where),
            not_examples=_lines(item, "not_examples", where),
            reason=reason,
        )
    except KeyError as exc:
        raise ConfigError(f"{where}: missing key {exc.args[0]!r}") from None


def _unnamed(item: object, index: int, path: Path) -> UnnamedRule:
    rid = item.get("id") if isinstance(item, dict) else None
    where = f"unnamed rule {rid or f'#{index + 1}'!r} in {path}"
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected a table")
    try:
        priorities = item.get("priorities", [])
        if not isinstance(priorities, list) or not all(isinstance(p, int) and 0 <= p <= 7 for p in priorities):
            raise ConfigError(f"{where}: priorities must be a list of journal priorities (0 to 7)")
        raise_event = item.get("raise", False)
        if not isinstance(raise_event, bool):
            raise ConfigError(f"{where}: raise must be true or false")
        return UnnamedRule(
            id=item["id"],
            severity=_severity(item, where, ceiling=UNNAMED_CEILING),
            description=item.get("description", item["id"]),
            priorities=frozenset(priorities),
            regex=_compile(item["regex"], where) if "regex" in item else None,
            raise_event=raise_event,
            examples=_lines(item, "examples", where),
        )
    except KeyError as exc:
        raise ConfigError(f"{where}: missing key {exc.args[0]!r}") from None


def load_catalog(path: Path = BUILTIN) -> list[Pattern]:
    """Every pattern and benign entry of one file, or a ConfigError naming the first bad one (used for the
    built-in files)."""
    data = read_tables(path)
    return ([_entry(item, i, path, "pattern") for i, item in enumerate(data.get("pattern", []))]
            + [_entry(item, i, path, "benign") for i, item in enumerate(data.get("benign", []))])


def load_unnamed(path: Path = BUILTIN) -> list[UnnamedRule]:
    """The rules of one file for lines no pattern names, in order (the first that applies decides)."""
    return [_unnamed(item, i, path) for i, item in enumerate(read_tables(path).get("unnamed", []))]


def load_builtin() -> list[Pattern]:
    """The built-in patterns, then the built-in benign entries: what the matcher runs without an operator's file."""
    return load_catalog(BUILTIN) + load_catalog(BENIGN)


def load_with_user(user_file: Path | None) -> tuple[list[Pattern], list[str]]:
    """The built-in patterns and benign entries plus the operator's. A bad user entry is skipped and reported by
    id; the built-in ones and the user's good ones still load. A user entry with a built-in id replaces it."""
    patterns = {p.id: p for p in load_builtin()}
    problems: list[str] = []
    if user_file is not None:
        try:
            data = read_tables(user_file)
        except ConfigError as exc:
            return list(patterns.values()), [str(exc)]
        for kind in ("pattern", "benign"):
            for i, item in enumerate(data.get(kind, [])):
                try:
                    p = _entry(item, i, user_file, kind)
                except ConfigError as exc:
                    problems.append(str(exc))
                    continue
                patterns[p.id] = p
    for problem in problems:
        log.error("%s (skipped; the other patterns are in use)", problem)
    return list(patterns.values()), problems


def unnamed_with_user(user_file: Path | None) -> tuple[list[UnnamedRule], list[str]]:
    """The operator's rules for lines no pattern names, before the built-in ones (a rule with a built-in id
    replaces it in place); bad ones are skipped and reported."""
    builtin = load_unnamed()
    if user_file is None:
        return builtin, []
    try:
        items = read_tables(user_file).get("unnamed", [])
    except ConfigError:
        return builtin, []  # reported once, by load_with_user
    own: list[UnnamedRule] = []
    problems: list[str] = []
    for i, item in enumerate(items):
        try:
            own.append(_unnamed(item, i, user_file))
        except ConfigError as exc:
            problems.append(str(exc))
    for problem in problems:
        log.error("%s (skipped; the other rules are in use)", problem)
    replaced = {r.id: r for r in own}
    rules = [r for r in own if r.id not in {b.id for b in builtin}]
    rules += [replaced.get(b.id, b) for b in builtin]
    return rules, problems
