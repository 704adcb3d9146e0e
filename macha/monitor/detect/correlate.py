"""Correlation rules (data: correlations.toml plus the operator's correlationsFile): sequences of journal events
over a time window, keyed by a field, that mean more together than each line alone.

A rule has steps, in order; each step names catalog patterns (or signals) and how many hits it needs. The rule
fires when, for one key (a source address, a unit, or the whole host), every step has its hits within ``window``
seconds, each step's after the one before, each from a different journal entry. It then raises one root-cause
event at the rule's severity (what the sequence means, never a journal PRIORITY), naming the key and what it
found. Until the sequence has been quiet for a window, later hits of the rule are follow-ons: the events of steps
that ``fold`` are linked to the root event (``metadata.root_event_id``), so the issue logic files them under it
(macha.review.issues), and the root's count and last_seen grow.

A ``[[signal]]`` is a line a rule needs that is not an event of its own (a successful login): it is kept as an info
log event, raises nothing, and can be named by a step like a pattern.

The hits and the root event of each (host, rule, key) live in the ``correlation_states`` table: batches come every
30 s and from the live follower, and a window spans them, and restarts.
"""

from __future__ import annotations

import hashlib
import logging
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from macha.core.errors import ConfigError
from macha.core.severity import SEVERITY_RANK, Severity
from macha.core.text import cap, one_line
from macha.monitor.detect.catalog import Pattern, _compile, _lines, read_tables
from macha.monitor.detect.grouping import auth_account, auth_source
from macha.monitor.detect.matcher import Matcher
from macha.store.models import CorrelationState, TriggerEvent, utcnow
from macha.store.ops import insert_ignore, upsert_many

log = logging.getLogger(__name__)

BUILTIN = Path(__file__).with_name("correlations.toml")
#: The fields a rule may be keyed by; "host": one sequence per host.
KEYS = ("source", "account", "unit", "host")
#: What a reason may name: the key fields, the first step's hit count, the window, the first and last lines.
REASON_FIELDS = frozenset({"source", "account", "unit", "count", "window", "first", "last", "rule"})
#: Hits kept per step beyond its count: enough for a window, bounded for a source that never stops.
EXTRA_HITS = 10
#: Characters of a line a hit keeps (for the reason).
HIT_TEXT = 200
#: A systemd manager line names its unit first ("x.service: Failed with result ..."): the unit it is about.
_SUBJECT_UNIT = re.compile(r"^(?:Unit )?([A-Za-z0-9@_.:\\-]+\.(?:service|socket|mount|timer|path|swap|target|scope))\b")


@dataclass(frozen=True)
class Step:
    patterns: frozenset[str]
    count: int = 1
    #: unit globs the hit's unit must match (empty: any unit)
    units: tuple[str, ...] = ()
    #: whether this step's events are linked to the root event (off for events that group many keys together)
    fold: bool = True

    def takes(self, pattern_ids: Sequence[str], unit: str | None) -> bool:
        if self.patterns.isdisjoint(pattern_ids):
            return False
        return not self.units or (unit is not None and any(fnmatchcase(unit, g) for g in self.units))


@dataclass(frozen=True)
class Example:
    #: (seconds from the start, unit, message)
    lines: tuple[tuple[float, str, str], ...]
    fires: bool
    #: substrings the root event's reason must hold
    says: tuple[str, ...] = ()
    #: events the root must have linked to it (at least)
    linked: int = 0


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    subsystem: str
    description: str
    key: str
    window: int
    reason: str
    steps: tuple[Step, ...]
    examples: tuple[Example, ...] = field(default=())

    @property
    def patterns(self) -> frozenset[str]:
        return frozenset().union(*(s.patterns for s in self.steps))


@dataclass
class Hit:
    """One journal entry's part in a rule's sequence."""

    step: int
    time: datetime
    entry: str
    log_id: int | None
    #: the trigger events (groups) the entry's matches of this step joined
    event_ids: list[int]
    fields: dict[str, str]
    text: str

    def dump(self) -> dict[str, Any]:
        return {"step": self.step, "time": self.time.isoformat(), "entry": self.entry, "log_id": self.log_id,
                "event_ids": self.event_ids, "fields": self.fields, "text": self.text}

    @classmethod
    def load(cls, d: dict[str, Any]) -> Hit:
        return cls(step=int(d["step"]), time=datetime.fromisoformat(d["time"]), entry=str(d["entry"]),
                   log_id=d.get("log_id"), event_ids=list(d.get("event_ids") or []), fields=dict(d.get("fields") or {}),
                   text=str(d.get("text", "")))


# --- loading -----------------------------------------------------------------------------------------------------

def _positive(item: dict, key: str, where: str, default: int | None = None, most: int = 7 * 86400) -> int:
    value = item.get(key, default)
    if value is None:
        raise KeyError(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
        raise ConfigError(f"{where}: {key} must be a whole number from 1 to {most}")
    return value


def _step(item: object, where: str) -> Step:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected a table")
    patterns = item.get("patterns")
    if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) and p for p in patterns):
        raise ConfigError(f"{where}: patterns must be a non-empty list of pattern or signal ids")
    fold = item.get("fold", True)
    if not isinstance(fold, bool):
        raise ConfigError(f"{where}: fold must be true or false")
    return Step(patterns=frozenset(patterns), count=_positive(item, "count", where, 1, 10_000),
                units=_lines(item, "units", where), fold=fold)


def _example(item: object, where: str) -> Example:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected a table")
    lines = []
    for line in item.get("lines", []):
        if not (isinstance(line, dict) and isinstance(line.get("message"), str)
                and isinstance(line.get("at", 0), int | float) and isinstance(line.get("unit", ""), str)):
            raise ConfigError(f"{where}: each line is {{ at = SECONDS, unit = \"...\", message = \"...\" }}")
        lines.append((float(line.get("at", 0)), line.get("unit", ""), line["message"]))
    if not lines:
        raise ConfigError(f"{where}: an example needs lines")
    fires = item.get("fires")
    if not isinstance(fires, bool):
        raise ConfigError(f"{where}: fires must be true or false")
    linked = item.get("linked", 0)
    if not isinstance(linked, int) or isinstance(linked, bool) or linked < 0:
        raise ConfigError(f"{where}: linked must be a whole number")
    return Example(lines=tuple(lines), fires=fires, says=_lines(item, "says", where), linked=linked)


def _rule(item: object, index: int, path: Path) -> Rule:
    rid = item.get("id") if isinstance(item, dict) else None
    where = f"correlation rule {rid or f'#{index + 1}'!r} in {path}"
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected a table")
    try:
        if not isinstance(item["id"], str) or not re.fullmatch(r"[a-z0-9_]{1,64}", item["id"]):
            raise ConfigError(f"{where}: id must be lower-case letters, digits and _ (at most 64)")
        severity = item["severity"]
        if severity not in SEVERITY_RANK:
            raise ConfigError(f"{where}: severity {severity!r} is not one of {', '.join(SEVERITY_RANK)}")
        key = item.get("key", "host")
        if key not in KEYS:
            raise ConfigError(f"{where}: key {key!r} is not one of {', '.join(KEYS)}")
        reason = item["reason"]
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigError(f"{where}: reason must be a text")
        try:
            named = {f for _, f, _, _ in string.Formatter().parse(reason) if f is not None}
        except ValueError as exc:
            raise ConfigError(f"{where}: reason: {exc}") from None
        if named - REASON_FIELDS:
            raise ConfigError(f"{where}: reason names {', '.join(sorted(named - REASON_FIELDS))}; it may name "
                              f"{', '.join(sorted(REASON_FIELDS))}")
        steps = item.get("step", [])
        if not isinstance(steps, list) or not steps:
            raise ConfigError(f"{where}: a rule needs [[rule.step]] tables")
        return Rule(
            id=item["id"], severity=Severity(severity), subsystem=str(item.get("subsystem", "other")),
            description=str(item.get("description", item["id"])), key=key,
            window=_positive(item, "window", where), reason=reason,
            steps=tuple(_step(s, f"{where}, step {i + 1}") for i, s in enumerate(steps)),
            examples=tuple(_example(e, f"{where}, example {i + 1}") for i, e in enumerate(item.get("example", []))),
        )
    except KeyError as exc:
        raise ConfigError(f"{where}: missing key {exc.args[0]!r}") from None


def _signal(item: object, index: int, path: Path) -> Pattern:
    sid = item.get("id") if isinstance(item, dict) else None
    where = f"signal {sid or f'#{index + 1}'!r} in {path}"
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected a table")
    try:
        return Pattern(id=item["id"], severity=Severity.INFO, subsystem=str(item.get("subsystem", "other")),
                       description=str(item.get("description", item["id"])), regex=_compile(item["regex"], where),
                       examples=_lines(item, "examples", where), not_examples=_lines(item, "not_examples", where))
    except KeyError as exc:
        raise ConfigError(f"{where}: missing key {exc.args[0]!r}") from None


def load_file(path: Path) -> tuple[list[Rule], list[Pattern]]:
    """The rules and signals of one file, or a ConfigError (one line) naming the first bad one."""
    data = read_tables(path, "correlation file", ("rule", "signal"))
    return ([_rule(item, i, path) for i, item in enumerate(data.get("rule", []))],
            [_signal(item, i, path) for i, item in enumerate(data.get("signal", []))])


class Correlator:
    """The rules and signals in use, and the one step of the pipeline that applies them to stored events."""

    def __init__(self, rules: list[Rule], signals: list[Pattern]):
        self.rules = rules
        self.signals = signals
        self._signal_matcher = Matcher(signals, unnamed=[]) if signals else None
        #: patterns whose events a rule links to its root: only theirs are looked up
        self._folded = frozenset(p for r in rules for st in r.steps if st.fold for p in st.patterns)
        self._by_pattern: dict[str, list[Rule]] = {}
        for r in rules:
            for p in r.patterns:
                self._by_pattern.setdefault(p, []).append(r)

    def match_signals(self, messages: list[str]) -> list[tuple[str, ...]]:
        """The signal ids each message matches (one pass of the pattern engine over the batch)."""
        if self._signal_matcher is None:
            return [()] * len(messages)
        return [tuple(p.id for p in found) if found else () for found in self._signal_matcher.match_many(messages)]

    def wants(self, pattern_ids: Sequence[str]) -> bool:
        return any(p in self._by_pattern for p in pattern_ids)

    def observe(self, s: Session, entries: list[tuple[dict[str, Any], int | None, list[str]]],
                trigger_rows: list[dict[str, Any]], now: datetime | None = None) -> list[tuple[int, str]]:
        """Apply the rules to entries just stored: (log row, log event id, the pattern and signal ids it matched),
        with the trigger rows they gave (stored already, as new events or repeats of open ones). Returns the root
        events raised (id, severity)."""
        entries = [e for e in entries if self.wants(e[2])]
        if not entries:
            return []
        events = _events_of(s, [t for t in trigger_rows if t.get("pattern_id") in self._folded])
        stored = [{"log_row": row, "log_id": log_id, "patterns": ids,
                   "events": {p: events[(log_id, p)] for p in ids if (log_id, p) in events}}
                  for row, log_id, ids in entries]
        hits: dict[tuple[str, str, str], list[Hit]] = {}
        for item in stored:
            row = item["log_row"]
            ids = item["patterns"]
            fields = _fields(row)
            for rule in {r.id: r for p in ids for r in self._by_pattern.get(p, ())}.values():
                key = "-" if rule.key == "host" else fields.get(rule.key)
                if not key:
                    continue
                for i, step in enumerate(rule.steps):
                    if step.takes(ids, fields.get("unit")):
                        events = sorted({item["events"][p] for p in ids if p in step.patterns
                                         and p in item["events"]})
                        hits.setdefault((row["hostname"], rule.id, key), []).append(Hit(
                            step=i, time=row["time"], entry=row["entry_key"], log_id=item["log_id"],
                            event_ids=events, fields=fields, text=cap(one_line(row["message"]), HIT_TEXT)))
        if not hits:
            return []
        rules = {r.id: r for r in self.rules}
        states = {(c.hostname, c.rule_id, c.key): c for c in s.execute(
            select(CorrelationState).where(CorrelationState.hostname.in_({h for h, _, _ in hits}),
                                           CorrelationState.rule_id.in_({r for _, r, _ in hits}),
                                           CorrelationState.key.in_({k for _, _, k in hits}))
            .with_for_update()).scalars()}
        raised: list[tuple[int, str]] = []
        rows = []
        for (host, rid, key), new in hits.items():
            rule = rules[rid]
            st = states.get((host, rid, key))
            seq = Window(rule, [Hit.load(h) for h in (st.hits if st else [])],
                            st.root_event_id if st else None, st.root_last if st else None)
            # An entry can be a hit of several steps: it counts once as a follow-on, and not at all after the
            # sequence it completed.
            done: set[str] = set()
            for hit in sorted(new, key=lambda h: (h.time, h.step)):
                if hit.entry in done:
                    continue
                outcome = seq.add(hit)
                if outcome == "fired":
                    root = _root_row(rule, host, key, seq)
                    found = insert_ignore(s, TriggerEvent.__table__, [root], returning=("id", "severity"))
                    if not found:
                        continue  # the completing line raised this rule before (read again): nothing new
                    (tid, sev), = found
                    raised.append((tid, sev))
                    seq.root_id = tid
                    _link(s, tid, [e for h in seq.fired_with if rule.steps[h.step].fold for e in h.event_ids])
                    done |= {h.entry for h in seq.fired_with}
                    seq.fired_with = []
                elif outcome == "follow-on":
                    _follow_on(s, rule, seq, hit)
                    done.add(hit.entry)
            rows.append({"hostname": host, "rule_id": rid, "key": key[:255],
                         "hits": [h.dump() for h in seq.hits], "root_event_id": seq.root_id,
                         "root_last": seq.root_last, "updated_at": now or utcnow()})
        upsert_many(s, CorrelationState.__table__, rows, keys=["hostname", "rule_id", "key"],
                    update=["hits", "root_event_id", "root_last", "updated_at"])
        return raised


class Window:
    """One (host, rule, key)'s window: pure, so that the rules' logic is tested without a database."""

    def __init__(self, rule: Rule, hits: list[Hit], root_id: int | None, root_last: datetime | None):
        self.rule = rule
        self.hits = hits
        self.root_id = root_id
        self.root_last = root_last
        self.window = timedelta(seconds=rule.window)
        #: the hits that completed the sequence, when it has just fired
        self.fired_with: list[Hit] = []
        self._most = sum(st.count + EXTRA_HITS for st in rule.steps)
        self.hits.sort(key=lambda h: h.time)

    def add(self, hit: Hit) -> str | None:
        """"fired", "follow-on" or None (counted, not complete)."""
        if self.root_last is not None:
            if hit.time - self.root_last <= self.window:
                self.root_last = max(self.root_last, hit.time)
                return "follow-on" if self.root_id is not None else None
            self.root_id, self.root_last, self.hits = None, None, []
        if any(h.entry == hit.entry and h.step == hit.step for h in self.hits):
            return None  # the same entry read again
        self.hits.append(hit)
        if len(self.hits) > 1 and hit.time < self.hits[-2].time:
            self.hits.sort(key=lambda h: h.time)  # read out of order (the follower's lines, then the check's)
        newest = self.hits[-1].time
        if newest - self.hits[0].time > self.window:
            self.hits = [h for h in self.hits if newest - h.time <= self.window]
        if len(self.hits) > self._most:
            for i, step in enumerate(self.rule.steps):
                mine = [h for h in self.hits if h.step == i]
                if len(mine) > step.count + EXTRA_HITS:
                    drop = {id(h) for h in mine[: len(mine) - step.count - EXTRA_HITS]}
                    self.hits = [h for h in self.hits if id(h) not in drop]
        taken = self.complete()
        if taken is None:
            return None
        self.fired_with = taken
        self.root_last = hit.time
        self.hits = []
        return "fired"

    def complete(self) -> list[Hit] | None:
        """The hits that make the sequence (each step's, in order, distinct entries), or None. Greedy: each step
        takes its earliest hits after the previous step's last."""
        after: datetime | None = None
        used: set[str] = set()
        taken: list[Hit] = []
        for i, step in enumerate(self.rule.steps):
            mine = [h for h in self.hits if h.step == i and h.entry not in used
                    and (after is None or h.time >= after)]
            if len(mine) < step.count:
                return None
            chosen = mine[: step.count] if i < len(self.rule.steps) - 1 else mine[-step.count:]
            taken += chosen
            used |= {h.entry for h in chosen}
            after = chosen[-1].time
        return taken


def _events_of(s: Session, rows: list[dict[str, Any]]) -> dict[tuple[int | None, str], int]:
    """(log event id, pattern id) -> the trigger event its row became, or the open group it joined as a repeat
    (the newest event of its host and fingerprint: the one grouping just used)."""
    if not rows:
        return {}
    found: dict[tuple[int | None, str], int] = {}
    # A state's event (a metric) has no log event: it is found by its fingerprint, as a repeat is.
    log_ids = sorted({r["log_event_id"] for r in rows if r.get("log_event_id") is not None})
    for start in range(0, len(log_ids), 500):  # bounded IN lists: SQLite caps bound parameters
        for tid, log_id, pid in s.execute(select(TriggerEvent.id, TriggerEvent.log_event_id, TriggerEvent.pattern_id)
                                          .where(TriggerEvent.log_event_id.in_(log_ids[start:start + 500]))):
            found[(log_id, pid)] = tid
    repeats = [r for r in rows if (r.get("log_event_id"), r["pattern_id"]) not in found]
    if repeats:
        groups = {(host, fp): tid for host, fp, tid in s.execute(
            select(TriggerEvent.hostname, TriggerEvent.fingerprint, func.max(TriggerEvent.id))
            .where(TriggerEvent.hostname.in_({r["hostname"] for r in repeats}),
                   TriggerEvent.fingerprint.in_({r["fingerprint"] for r in repeats}))
            .group_by(TriggerEvent.hostname, TriggerEvent.fingerprint))}
        for r in repeats:
            if (r["hostname"], r["fingerprint"]) in groups:
                found[(r.get("log_event_id"), r["pattern_id"])] = groups[(r["hostname"], r["fingerprint"])]
    return found


def _fields(row: dict[str, Any]) -> dict[str, str]:
    """The fields a rule can key on, from the whole message (untrusted text: capped, one line)."""
    message = row["message"]
    out: dict[str, str] = {}
    if src := auth_source(message):
        out["source"] = cap(one_line(src), 255)
    if account := auth_account(message):
        out["account"] = cap(one_line(account), 64)
    m = _SUBJECT_UNIT.match(message)
    unit = m.group(1) if m else row.get("unit")
    if unit:
        out["unit"] = cap(one_line(unit), 255)
    return out


def _reason(rule: Rule, key: str, taken: list[Hit]) -> str:
    fields: dict[str, str] = {}
    for h in reversed(taken):  # the completing line's fields first: it names the account that got in
        for k, v in h.fields.items():
            fields.setdefault(k, v)
    values = {"source": "?", "account": "?", "unit": "?", **fields,
              "count": str(sum(1 for h in taken if h.step == 0)), "window": str(rule.window),
              "first": taken[0].text, "last": taken[-1].text, "rule": rule.id}
    if rule.key != "host":
        values[rule.key] = key
    return cap(rule.reason.format_map(values), 4000)


def _root_row(rule: Rule, host: str, key: str, seq: Window) -> dict[str, Any]:
    taken = seq.fired_with
    last = taken[-1]
    return {
        "time": last.time, "last_seen": last.time, "count": 1, "hostname": host,
        "trigger_type": "correlation", "pattern_id": rule.id, "severity": rule.severity,
        "trigger_reason": _reason(rule, key, taken),
        "fingerprint": hashlib.sha256(f"correlation\x1f{rule.id}\x1f{key}".encode()).hexdigest()[:32],
        "log_event_id": last.log_id,
        "metadata": {"subsystem": rule.subsystem, "unit": last.fields.get("unit") if rule.key == "unit" else None,
                     "correlation": {"rule": rule.id, "key": rule.key, "value": key, "window": rule.window,
                                     "hits": [{"step": h.step, "time": h.time.isoformat(), "log_id": h.log_id,
                                               "event_ids": h.event_ids, "text": h.text} for h in taken][:50]},
                     **{k: v for k, v in last.fields.items() if k in ("source", "account")}},
    }


def _link(s: Session, root_id: int, event_ids: list[int]) -> int:
    """Link events to the root event (an event already linked to a root keeps it). Returns how many were."""
    ids = sorted({i for i in event_ids if i != root_id})
    linked = 0
    for event in s.execute(select(TriggerEvent).where(TriggerEvent.id.in_(ids))).scalars() if ids else ():
        meta = dict(event.meta or {})
        if meta.get("root_event_id"):
            continue
        meta["root_event_id"] = root_id
        event.meta = meta
        linked += 1
    if linked:
        root = s.get(TriggerEvent, root_id)
        if root is not None:
            meta = dict(root.meta or {})
            meta["linked_events"] = sorted(set(meta.get("linked_events", [])) | set(ids))[:200]
            root.meta = meta
    s.flush()
    return linked


def _follow_on(s: Session, rule: Rule, seq: Window, hit: Hit) -> None:
    if rule.steps[hit.step].fold:
        _link(s, seq.root_id, hit.event_ids)
    root = s.get(TriggerEvent, seq.root_id)
    if root is not None:
        root.count = (root.count or 1) + 1
        root.last_seen = max(root.last_seen or root.time, hit.time)


# --- the rules in use ---------------------------------------------------------------------------------------------

_by_file: dict[str | None, tuple[Correlator, list[str]]] = {}


def correlator_for(user_file: Path | None) -> tuple[Correlator, list[str]]:
    """The built-in rules and signals plus the operator's file (cached per process), and the problems found: a
    file that does not load is one line and is left out (the built-in rules still run); a user rule or signal
    with a built-in id replaces it."""
    key = str(user_file) if user_file is not None else None
    if key not in _by_file:
        rules, signals = load_file(BUILTIN)
        problems: list[str] = []
        if user_file is not None:
            try:
                own_rules, own_signals = load_file(user_file)
            except ConfigError as exc:
                problems.append(str(exc))
                log.error("%s (the built-in correlation rules are in use)", exc)
            else:
                rules = list({r.id: r for r in [*rules, *own_rules]}.values())
                signals = list({p.id: p for p in [*signals, *own_signals]}.values())
        _by_file[key] = (Correlator(rules, signals), problems)
    return _by_file[key]


def default_correlator() -> Correlator:
    return correlator_for(None)[0]
