"""The action catalog (catalog.toml) and the validation of a proposed action against it.

A proposal is a name and arguments. Everything else, the argv, the risk, the limits, comes from here. Argument
values are checked against a type's grammar before they reach an argv element, and no command runs through a shell.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from macha.errors import ConfigError

BUILTIN = Path(__file__).with_name("catalog.toml")

RISKS: tuple[str, ...] = ("read-only", "low", "medium", "high", "critical")
RISK_RANK = {name: rank for rank, name in enumerate(RISKS)}

PARAM_TYPES = ("unit", "size", "age", "days", "count", "path", "diagnostic")

UNIT_SUFFIXES = (
    "service", "socket", "target", "device", "mount", "automount", "swap", "timer", "path", "slice", "scope",
)
# systemd's unit-name grammar: ASCII letters, digits, ":", "-", "_", ".", "\" (for escapes), an optional
# "@instance", and a known type suffix. A leading "-" is refused as well: it would read as an option.
_UNIT_CHARS = r"[A-Za-z0-9:_.\\-]"
UNIT_NAME = re.compile(
    rf"(?P<prefix>{_UNIT_CHARS}+?)(?:@(?P<instance>{_UNIT_CHARS}*))?\.(?P<suffix>{'|'.join(UNIT_SUFFIXES)})"
)
UNIT_MAX = 255

#: Units no action may touch: the way in (sshd), systemd itself, the message bus, the network, and Macha.
BUILTIN_PROTECTED = (
    "sshd.service", "sshd@*.service", "sshd.socket", "ssh.service", "ssh@*.service", "ssh.socket",
    "systemd-*", "init.scope", "-.mount", "-.slice",
    "dbus.service", "dbus.socket", "dbus-broker.service",
    "NetworkManager*.service", "network.target", "network-online.target", "networking.service",
    "wpa_supplicant*.service", "polkit.service",
    "macha-*", "macha.service", "ai-sysadmin*",
)

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_SIZE = re.compile(r"([1-9][0-9]{0,5})([KMG])")
_AGE = re.compile(r"([1-9][0-9]{0,3})(d|w)")
_SIZE_FACTOR = {"K": 1024, "M": 1024**2, "G": 1024**3}


class ActionRefused(Exception):
    """A proposal the catalog cannot accept; the message is the reason, in words for the audit log."""


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: str
    required: bool = False
    protect: bool = False
    must_exist: bool = False
    min: int | None = None
    max: int | None = None
    min_bytes: int | None = None
    min_days: int | None = None


@dataclass(frozen=True)
class RateLimit:
    max: int
    per: int
    key: str | None = None


@dataclass(frozen=True)
class Diagnostic:
    name: str
    description: str
    argv: tuple[str, ...]
    params: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)
    head: int | None = None
    tail: int | None = None


@dataclass(frozen=True)
class Entry:
    name: str
    description: str
    risk: str
    privileged: bool
    timeout: int
    rollback: str
    params: dict[str, ParamSpec]
    commands: tuple[tuple[str, ...], ...] = ()
    variants: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...] = ()
    rate_limit: RateLimit | None = None


@dataclass(frozen=True)
class Validated:
    """A proposal that passed the catalog: normalised arguments and the exact argv lists to run."""

    entry: Entry
    arguments: dict[str, Any]
    commands: list[list[str]]
    head: int | None = None
    tail: int | None = None

    @property
    def rate_key(self) -> str | None:
        rl = self.entry.rate_limit
        return None if rl is None or rl.key is None else str(self.arguments.get(rl.key))


@dataclass
class Checks:
    """What validation needs from the world: protected units, clean_tmp's roots, and a unit probe (or None)."""

    protected: tuple[str, ...] = BUILTIN_PROTECTED
    tmp_roots: tuple[str, ...] = ("/tmp", "/var/tmp")
    # unit name -> None when it exists; otherwise raises ActionRefused. None: existence is checked later.
    unit_probe: Callable[[str], None] | None = None


def dedup_key(action: str, arguments: dict[str, Any]) -> str:
    canonical = json.dumps({"action": action, "arguments": arguments}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def normalise_unit(value: Any) -> str:
    """A systemd unit name, with ".service" added when no type suffix is given (as systemctl does)."""
    if not isinstance(value, str):
        raise ActionRefused(f"unit must be a string, got {type(value).__name__}")
    name = value
    if not name:
        raise ActionRefused("unit name is empty")
    if name.startswith("-") and name not in ("-.mount", "-.slice"):
        raise ActionRefused(f"unit name {_show(name)} starts with '-' (it would read as an option)")
    if name.rsplit(".", 1)[-1] not in UNIT_SUFFIXES and re.fullmatch(rf"{_UNIT_CHARS}+(?:@{_UNIT_CHARS}*)?", name):
        name = f"{name}.service"
    if len(name) > UNIT_MAX:
        raise ActionRefused(f"unit name is longer than {UNIT_MAX} characters")
    if not UNIT_NAME.fullmatch(name):
        raise ActionRefused(f"{_show(value)} is not a systemd unit name (letters, digits, ':', '-', '_', '.', '\\' "
                            f"and '@', ending in a unit type such as .service)")
    return name


def is_protected(unit: str, protected: tuple[str, ...]) -> str | None:
    """The protecting pattern, if any."""
    for pattern in protected:
        if fnmatch.fnmatchcase(unit, pattern):
            return pattern
    return None


def protected_patterns(extra: list[str] | tuple[str, ...] = (), *, database_url: str | None = None,
                       broker_url: str | None = None) -> tuple[str, ...]:
    """The built-in list, the operator's additions, and the database and broker this Macha uses."""
    out = list(BUILTIN_PROTECTED)
    for name in extra:
        has_glob = any(c in name for c in "*?[")
        out.append(name if has_glob or name.rsplit(".", 1)[-1] in UNIT_SUFFIXES else f"{name}.service")
    if database_url and database_url.startswith("postgres"):
        out += ["postgresql.service", "postgresql@*.service", "postgresql-*.service"]
    if broker_url and not broker_url.startswith(("redis+socket://", "unix://")):
        out += ["redis.service", "redis-*.service", "redis@*.service", "redis-server.service"]
    return tuple(out)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class Catalog:
    def __init__(self, entries: dict[str, Entry], diagnostics: dict[str, Diagnostic]):
        self.entries = entries
        self.diagnostics = diagnostics

    def get(self, name: Any) -> Entry:
        if not isinstance(name, str) or name not in self.entries:
            raise ActionRefused(f"unknown action {_show(name)}; the catalog has: {', '.join(sorted(self.entries))}")
        return self.entries[name]

    def validate(self, name: Any, arguments: Any, checks: Checks) -> Validated:
        entry = self.get(name)
        if not isinstance(arguments, dict):
            raise ActionRefused(f"{entry.name}: arguments must be an object of named values")
        unknown = sorted(str(k) for k in arguments if k not in entry.params)
        if unknown:
            allowed = ", ".join(entry.params) or "none"
            raise ActionRefused(f"{entry.name}: unknown argument {_show(unknown[0])} (allowed: {allowed})")
        args: dict[str, Any] = {}
        for spec in entry.params.values():
            if arguments.get(spec.name) is None:
                if spec.required:
                    raise ActionRefused(f"{entry.name}: argument {spec.name!r} is required")
                continue
            args[spec.name] = self._value(entry, spec, arguments[spec.name], checks)
        head = tail = None
        if entry.variants:
            given = [when for when, _ in entry.variants if when in args]
            if len(given) != 1:
                names = " or ".join(when for when, _ in entry.variants)
                raise ActionRefused(f"{entry.name}: give exactly one of {names}")
            templates = dict(entry.variants)[given[0]]
        elif entry.name == "run_diagnostic":
            diag = self.diagnostics[args["name"]]
            for pname in args:
                if pname != "name" and pname not in diag.params:
                    raise ActionRefused(f"run_diagnostic {diag.name}: takes no argument {pname!r}")
            for pname in diag.params:
                if pname not in args:
                    if pname not in diag.defaults:
                        raise ActionRefused(f"run_diagnostic {diag.name}: argument {pname!r} is required")
                    args[pname] = diag.defaults[pname]
            templates, head, tail = (diag.argv,), diag.head, diag.tail
        else:
            templates = entry.commands
        commands = [[_render(element, args) for element in argv] for argv in templates]
        return Validated(entry=entry, arguments=args, commands=commands, head=head, tail=tail)

    def _value(self, entry: Entry, spec: ParamSpec, value: Any, checks: Checks) -> Any:
        where = f"{entry.name}: {spec.name}"
        if spec.type == "unit":
            try:
                unit = normalise_unit(value)
            except ActionRefused as exc:
                raise ActionRefused(f"{where}: {exc}") from None
            if spec.protect:
                pattern = is_protected(unit, checks.protected)
                if pattern is not None:
                    raise ActionRefused(f"{where}: {unit} is protected (matches {pattern!r}); no action may touch it")
            if spec.must_exist and checks.unit_probe is not None:
                checks.unit_probe(unit)
            return unit
        if spec.type in ("count", "days"):
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, str) and re.fullmatch(r"[0-9]{1,6}", value):
                    value = int(value)
                else:
                    raise ActionRefused(f"{where}: {_show(value)} is not a whole number")
            if spec.min is not None and value < spec.min:
                raise ActionRefused(f"{where}: {value} is below the minimum {spec.min}")
            if spec.max is not None and value > spec.max:
                raise ActionRefused(f"{where}: {value} is above the maximum {spec.max}")
            return value
        if spec.type == "size":
            m = _SIZE.fullmatch(value) if isinstance(value, str) else None
            if not m:
                raise ActionRefused(f"{where}: {_show(value)} is not a size like 500M or 2G")
            if spec.min_bytes and int(m[1]) * _SIZE_FACTOR[m[2]] < spec.min_bytes:
                raise ActionRefused(f"{where}: {value} is below the minimum {spec.min_bytes // 1024**2}M")
            return value
        if spec.type == "age":
            m = _AGE.fullmatch(value) if isinstance(value, str) else None
            if not m:
                raise ActionRefused(f"{where}: {_show(value)} is not an age like 14d or 2w")
            days = int(m[1]) * (7 if m[2] == "w" else 1)
            if spec.min_days and days < spec.min_days:
                raise ActionRefused(f"{where}: {value} is below the minimum {spec.min_days}d")
            return value
        if spec.type == "path":
            return _tmp_path(where, value, checks.tmp_roots)
        if spec.type == "diagnostic":
            if not isinstance(value, str) or value not in self.diagnostics:
                raise ActionRefused(
                    f"{where}: unknown diagnostic {_show(value)}; the list is: {', '.join(sorted(self.diagnostics))}"
                )
            return value
        raise AssertionError(spec.type)  # load_catalog refuses unknown types


def _tmp_path(where: str, value: Any, roots: tuple[str, ...]) -> str:
    if not isinstance(value, str) or not value.startswith("/") or "\x00" in value or len(value) > 4096:
        raise ActionRefused(f"{where}: {_show(value)} is not an absolute path")
    try:
        # Symlinks resolved: a link in /tmp pointing at /etc resolves to /etc and is refused below.
        real = os.path.realpath(value, strict=True)
    except OSError as exc:
        raise ActionRefused(f"{where}: {_show(value)} cannot be resolved: {exc.strerror or exc}") from None
    if not os.path.isdir(real):
        raise ActionRefused(f"{where}: {_show(value)} is not a directory")
    for root in roots:
        root_real = os.path.realpath(root)
        if real == root_real or real.startswith(root_real.rstrip("/") + "/"):
            return real
    raise ActionRefused(f"{where}: {_show(value)} resolves to {real}, which is outside {', '.join(roots)}")


def _render(element: str, args: dict[str, Any]) -> str:
    return _PLACEHOLDER.sub(lambda m: str(args[m[1]]), element)


def load_catalog(path: Path = BUILTIN) -> Catalog:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"action catalog {path}: {exc}") from None
    try:
        diagnostics = {name: _diagnostic(name, d) for name, d in data.get("diagnostic", {}).items()}
        entries = {name: _entry(name, e) for name, e in data.get("action", {}).items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"action catalog {path}: {exc}") from None
    return Catalog(entries, diagnostics)


def _diagnostic(name: str, d: dict[str, Any]) -> Diagnostic:
    diag = Diagnostic(
        name=name,
        description=d.get("description", name),
        argv=tuple(d["argv"]),
        params=tuple(d.get("params", ())),
        defaults=dict(d.get("defaults", {})),
        head=d.get("head"),
        tail=d.get("tail"),
    )
    _check_placeholders(f"diagnostic {name}", [diag.argv], set(diag.params))
    return diag


def _entry(name: str, e: dict[str, Any]) -> Entry:
    if e["risk"] not in RISK_RANK:
        raise ValueError(f"action {name}: risk {e['risk']!r} is not one of {', '.join(RISKS)}")
    params = {}
    for pname, p in e.get("params", {}).items():
        if p["type"] not in PARAM_TYPES:
            raise ValueError(f"action {name}: parameter {pname} has unknown type {p['type']!r}")
        params[pname] = ParamSpec(name=pname, **p)
    commands = tuple(tuple(argv) for argv in e.get("commands", ()))
    variants = tuple((v["when"], tuple(tuple(argv) for argv in v["commands"])) for v in e.get("variant", ()))
    rl = e.get("rate_limit")
    entry = Entry(
        name=name,
        description=e["description"],
        risk=e["risk"],
        privileged=bool(e.get("privileged", False)),
        timeout=int(e["timeout"]),
        rollback=e["rollback"],
        params=params,
        commands=commands,
        variants=variants,
        rate_limit=RateLimit(**rl) if rl else None,
    )
    if name != "run_diagnostic":
        if not commands and not variants:
            raise ValueError(f"action {name}: needs commands or variant")
        _check_placeholders(f"action {name}", list(commands) + [c for _, cs in variants for c in cs], set(params))
    return entry


def _check_placeholders(where: str, argvs: list[tuple[str, ...]], params: set[str]) -> None:
    for argv in argvs:
        if not argv or _PLACEHOLDER.search(argv[0]):
            raise ValueError(f"{where}: the program (argv[0]) must be fixed")
        for element in argv:
            for pname in _PLACEHOLDER.findall(element):
                if pname not in params:
                    raise ValueError(f"{where}: placeholder {{{pname}}} names no parameter")


_default: Catalog | None = None


def default_catalog() -> Catalog:
    global _default
    if _default is None:
        _default = load_catalog()
    return _default
