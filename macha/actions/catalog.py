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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from macha.actions.observe import DiskUse, HostProbe, UnitFacts
from macha.actions.refusal import ActionRefused
from macha.core import units
from macha.core.errors import ConfigError
from macha.core.risk import RISK_RANK, RISKS, Risk
from macha.core.units import UNIT_SUFFIXES, ActiveState, UnitNameError

BUILTIN = Path(__file__).with_name("catalog.toml")


PARAM_TYPES = ("unit", "size", "age", "days", "count", "path", "diagnostic")

PRECONDITIONS = ("unit_down", "unit_failed", "disk_pressure", "none")
#: What systemd can do on its own when a unit fails, succeeds or hits its start limit that equals a reboot (or ends
#: the system manager): restarting such a unit may do it.
REBOOT_ACTIONS = re.compile(r"(reboot|soft-reboot|poweroff|halt|kexec|exit)(-force|-immediate)?")

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_SIZE = re.compile(r"([1-9][0-9]{0,5})([KMG])")
_AGE = re.compile(r"([1-9][0-9]{0,3})(d|w)")
_SIZE_FACTOR = {"K": 1024, "M": 1024**2, "G": 1024**3}


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
    #: For type unit: the unit types accepted (e.g. ("service",)); None: any.
    unit_types: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Precondition:
    """What must be observed on the host before the action is queued or run (see catalog.toml)."""

    check: str
    path: str | None = None
    param: str | None = None


@dataclass(frozen=True)
class Escalation:
    to: Risk
    when: str


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
    risk: Risk
    privileged: bool
    timeout: int
    rollback: str
    params: dict[str, ParamSpec]
    commands: tuple[tuple[str, ...], ...] = ()
    variants: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...] = ()
    rate_limit: RateLimit | None = None
    precondition: Precondition = Precondition("none")
    escalate: Escalation | None = None


@dataclass(frozen=True)
class Validated:
    """A proposal that passed the catalog: normalised arguments and the exact argv lists to run."""

    entry: Entry
    arguments: dict[str, Any]
    commands: list[list[str]]
    head: int | None = None
    tail: int | None = None
    #: The risk this proposal carries: the entry's, or higher when what was observed escalates it (always set by
    #: validate(); the policy takes None, like any unknown risk, for an error).
    risk: Risk | None = None
    #: Why the risk is above the entry's, when it is.
    risk_reason: str | None = None

    @property
    def rate_key(self) -> str | None:
        rl = self.entry.rate_limit
        return None if rl is None or rl.key is None else str(self.arguments.get(rl.key))


@dataclass
class ValidationContext:
    """What validation needs from the world: protected units, clean_tmp's roots, and the host's own state.

    ``probe`` asks the host the action would run on (unit states, disk use); None when validation runs elsewhere:
    existence and preconditions are then checked by the executing task on that host, before anything runs."""

    protected: tuple[str, ...] = ()
    tmp_roots: tuple[str, ...] = ("/tmp", "/var/tmp")
    probe: HostProbe | None = None
    #: Disk pressure: the disk_percent and inode_percent thresholds (raiseAt) of the settings.
    disk_pressure_at: float = 90.0
    inode_pressure_at: float = 90.0


def dedup_key(action: str, arguments: dict[str, Any]) -> str:
    canonical = json.dumps({"action": action, "arguments": arguments}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def normalise_unit(value: Any) -> str:
    """A systemd unit name, with ".service" added when no type suffix is given (as systemctl does); the grammar is
    macha.core.units', a name outside it is refused."""
    try:
        return units.normalise(value)
    except UnitNameError as exc:
        raise ActionRefused(str(exc)) from None


def is_protected(unit: str, protected: tuple[str, ...]) -> str | None:
    """The protecting pattern, if any."""
    for pattern in protected:
        if fnmatch.fnmatchcase(unit, pattern):
            return pattern
    return None


def protected_patterns(extra: list[str] | tuple[str, ...] = (), *, database_url: str | None = None,
                       broker_url: str | None = None, catalog: Catalog | None = None) -> tuple[str, ...]:
    """The catalog's list, the operator's additions, and the database and broker this Macha uses."""
    out = list((catalog or default_catalog()).protected)
    for name in extra:
        has_glob = any(c in name for c in "*?[")
        out.append(name if has_glob else units.with_default_suffix(name))
    if database_url and database_url.startswith("postgres"):
        out += ["postgresql.service", "postgresql@*.service", "postgresql-*.service"]
    if broker_url and not broker_url.startswith(("redis+socket://", "unix://")):
        out += ["redis.service", "redis-*.service", "redis@*.service", "redis-server.service"]
    return tuple(out)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class Catalog:
    def __init__(self, entries: dict[str, Entry], diagnostics: dict[str, Diagnostic],
                 protected: tuple[str, ...] = ()):
        self.entries = entries
        self.diagnostics = diagnostics
        self.protected = protected

    def get(self, name: Any) -> Entry:
        if not isinstance(name, str) or name not in self.entries:
            raise ActionRefused(f"unknown action {_show(name)}; the catalog has: {', '.join(sorted(self.entries))}")
        return self.entries[name]

    def validate(self, name: Any, arguments: Any, ctx: ValidationContext) -> Validated:
        entry = self.get(name)
        if not isinstance(arguments, dict):
            raise ActionRefused(f"{entry.name}: arguments must be an object of named values")
        unknown = sorted(str(k) for k in arguments if k not in entry.params)
        if unknown:
            allowed = ", ".join(entry.params) or "none"
            raise ActionRefused(f"{entry.name}: unknown argument {_show(unknown[0])} (allowed: {allowed})")
        args: dict[str, Any] = {}
        facts: dict[str, UnitFacts] = {}
        for spec in entry.params.values():
            if arguments.get(spec.name) is None:
                if spec.required:
                    raise ActionRefused(f"{entry.name}: argument {spec.name!r} is required")
                continue
            args[spec.name] = self._value(entry, spec, arguments[spec.name], ctx)
            if spec.type == "unit" and spec.must_exist and ctx.probe is not None:
                facts[spec.name] = ctx.probe.unit(args[spec.name])
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
        if ctx.probe is not None:
            _precondition(entry, args, facts, ctx)
        risk, risk_reason = _escalated_risk(entry, facts)
        return Validated(entry=entry, arguments=args, commands=commands, head=head, tail=tail, risk=risk,
                         risk_reason=risk_reason)

    def _value(self, entry: Entry, spec: ParamSpec, value: Any, ctx: ValidationContext) -> Any:
        where = f"{entry.name}: {spec.name}"
        if spec.type == "unit":
            try:
                unit = normalise_unit(value)
            except ActionRefused as exc:
                raise ActionRefused(f"{where}: {exc}") from None
            suffix = unit.rsplit(".", 1)[-1]
            if spec.unit_types is not None and suffix not in spec.unit_types:
                raise ActionRefused(f"{where}: {unit} is a {suffix} unit; {entry.name} takes only "
                                    f"{' or '.join(spec.unit_types)} units")
            if spec.protect:
                pattern = is_protected(unit, ctx.protected)
                if pattern is not None:
                    raise ActionRefused(f"{where}: {unit} is protected (matches {pattern!r}); no action may touch it")
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
            return _tmp_path(where, value, ctx.tmp_roots)
        if spec.type == "diagnostic":
            if not isinstance(value, str) or value not in self.diagnostics:
                raise ActionRefused(
                    f"{where}: unknown diagnostic {_show(value)}; the list is: {', '.join(sorted(self.diagnostics))}"
                )
            return value
        raise AssertionError(spec.type)  # load_catalog refuses unknown types


def _precondition(entry: Entry, args: dict[str, Any], facts: dict[str, UnitFacts], ctx: ValidationContext) -> None:
    """Refuses unless the host itself shows the state the action is for (see catalog.toml)."""
    pre = entry.precondition
    assert ctx.probe is not None
    if pre.check in ("unit_down", "unit_failed"):
        unit = facts.get("unit")
        if unit is None:
            raise ActionRefused(f"{entry.name}: no unit state to check its precondition against")
        if pre.check == "unit_failed":
            if unit.active_state != ActiveState.FAILED:
                raise ActionRefused(f"{entry.name}: {unit.name} is {unit.active_state} ({unit.sub_state}), not failed,"
                                    " as systemctl show reports it here; a log line saying otherwise is not enough")
        # Down: failed, stopped, or waiting to be restarted after a failure.
        elif not (unit.active_state in (ActiveState.FAILED, ActiveState.INACTIVE)
                  or (unit.active_state, unit.sub_state) == (ActiveState.ACTIVATING, "auto-restart")):
            raise ActionRefused(f"{entry.name}: {unit.name} is {unit.active_state} ({unit.sub_state}) as systemctl "
                                "show reports it here, not failed or stopped; a log line saying otherwise is not "
                                "enough")
    elif pre.check == "disk_pressure":
        path = str(args[pre.param]) if pre.param else str(pre.path)
        use: DiskUse = ctx.probe.disk(path)
        if use.percent < ctx.disk_pressure_at and use.inode_percent < ctx.inode_pressure_at:
            raise ActionRefused(
                f"{entry.name}: no disk pressure on the file system of {use.path}: {use.percent:.0f} % of its space "
                f"and {use.inode_percent:.0f} % of its inodes used, measured now (the thresholds are "
                f"{ctx.disk_pressure_at:g} % and {ctx.inode_pressure_at:g} %)"
            )


def _escalated_risk(entry: Entry, facts: dict[str, UnitFacts]) -> tuple[Risk, str | None]:
    esc = entry.escalate
    if esc is None:
        return entry.risk, None
    for unit in facts.values():
        for name, value in (("FailureAction", unit.failure_action), ("SuccessAction", unit.success_action),
                            ("StartLimitAction", unit.start_limit_action)):
            if REBOOT_ACTIONS.fullmatch(value):
                return esc.to, (f"{unit.name} has {name}={value}: {entry.name} of it can {value} the host, as risky "
                                f"as a reboot ({esc.to})")
    return entry.risk, None


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
    # The roots were resolved and checked when the settings loaded; they are compared as given, so a link planted at
    # a root's path since then is not followed.
    for root in roots:
        if real == root or real.startswith(root.rstrip("/") + "/"):
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
        protected = tuple(str(p) for group in data.get("protected", {}).values() for p in group)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"action catalog {path}: {exc}") from None
    return Catalog(entries, diagnostics, protected)


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
        p = dict(p)
        if "unit_types" in p:
            p["unit_types"] = tuple(p["unit_types"])
            if unknown := set(p["unit_types"]) - set(UNIT_SUFFIXES):
                raise ValueError(f"action {name}: parameter {pname}: unknown unit types {sorted(unknown)}")
        params[pname] = ParamSpec(name=pname, **p)
    commands = tuple(tuple(argv) for argv in e.get("commands", ()))
    variants = tuple((v["when"], tuple(tuple(argv) for argv in v["commands"])) for v in e.get("variant", ()))
    if name != "run_diagnostic":
        if not commands and not variants:
            raise ValueError(f"action {name}: needs commands or variant")
        _check_placeholders(f"action {name}", list(commands) + [c for _, cs in variants for c in cs], set(params))
    rl = e.get("rate_limit")
    if "precondition" not in e:
        raise ValueError(f"action {name}: needs a precondition (none only for read-only, high or critical risk)")
    pre = Precondition(**e["precondition"])
    if pre.check not in PRECONDITIONS:
        raise ValueError(f"action {name}: unknown precondition {pre.check!r} (one of {', '.join(PRECONDITIONS)})")
    if pre.check == "none" and Risk.READ_ONLY.rank < RISK_RANK[e["risk"]] < Risk.HIGH.rank:
        # A low or medium action may run under an autonomy level with no human: only what Macha itself observed
        # may start it.
        raise ValueError(f"action {name}: a {e['risk']} action needs a precondition Macha can observe")
    if pre.check in ("unit_down", "unit_failed") and not any(
            p.type == "unit" and p.must_exist for p in params.values()):
        raise ValueError(f"action {name}: precondition {pre.check} needs a unit parameter with must_exist")
    if pre.check == "disk_pressure" and (pre.path is None) == (pre.param is None):
        raise ValueError(f"action {name}: precondition disk_pressure needs exactly one of path or param")
    esc = Escalation(**e["escalate"]) if "escalate" in e else None
    if esc is not None and (esc.when != "reboots" or RISK_RANK.get(esc.to, -1) < Risk.CRITICAL.rank):
        raise ValueError(f"action {name}: escalate must be {{ to = \"critical\", when = \"reboots\" }}")
    if esc is not None:
        esc = Escalation(to=Risk(esc.to), when=esc.when)
    entry = Entry(
        name=name,
        description=e["description"],
        risk=Risk(e["risk"]),
        privileged=bool(e.get("privileged", False)),
        timeout=int(e["timeout"]),
        rollback=e["rollback"],
        params=params,
        commands=commands,
        variants=variants,
        rate_limit=RateLimit(**rl) if rl else None,
        precondition=pre,
        escalate=esc,
    )
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
