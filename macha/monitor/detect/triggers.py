"""Turn journal entries into log events and trigger events (rows, not yet stored)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from macha.core.severity import SEVERITY_RANK, Severity, worst
from macha.monitor.collect.journal import JournalEntry
from macha.monitor.detect.grouping import AUTH_PATTERNS, auth_source
from macha.monitor.detect.catalog import Pattern
from macha.monitor.detect.matcher import Matcher

_NUMBERS = re.compile(r"0x[0-9a-f]+|\b[0-9a-f]{8,}\b|\d+", re.I)


def entry_key(entry: JournalEntry) -> str:
    return hashlib.sha256(entry.cursor.encode()).hexdigest()[:40]


def fingerprint(pattern_id: str, unit: str | None, message: str) -> str:
    """Groups repeats: same pattern, same unit, same message once numbers and ids are masked."""
    normal = _NUMBERS.sub("#", message)[:512]
    return hashlib.sha256(f"{pattern_id}\x1f{unit or ''}\x1f{normal}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Detection:
    """What one kept journal entry gives: its log_events row and the triggers it raises (keyed by column)."""

    log_row: dict[str, Any]
    triggers: list[dict[str, Any]]


def detect(entry: JournalEntry, matcher: Matcher, hostname: str, source_key: str,
           matches: Sequence[Pattern] | None = None) -> Detection | None:
    """None for entries that no pattern, benign entry or unnamed-line rule keeps. ``matches``: the patterns the
    entry matched, when the caller matched a whole batch at once.

    Severity is what the line says happened: the worst pattern it matches, whatever its journal PRIORITY (a
    kernel segfault is logged at info, a service's stdout is info). A line no pattern names gets the first
    unnamed-line rule (data) that applies to its PRIORITY and words, at most medium. A known-benign line is kept
    at its benign entry's severity (below high), with the reason on its events."""
    if matches is None:
        matches = matcher.match(entry.message)
    alarms = [p for p in matches if not p.benign]
    known = next((p for p in matches if p.benign), None)
    rule = None if alarms else next((r for r in matcher.unnamed if r.applies(entry.priority, entry.message)), None)
    if not alarms and known is None and rule is None:
        return None
    if alarms:
        severity = worst(p.severity for p in alarms)
    else:
        severity = rule.severity if rule is not None else known.severity
    if known is not None:
        severity = _capped(severity, known.severity)
    unit = entry.unit or entry.identifier
    # Whether a pattern matched: a repeat joins its group without a trigger row of its own, and the classifier
    # must still know the line was matched (a known-benign line counts: it is recognised).
    meta: dict[str, Any] = {**entry.fields(), "matched": 1 if matches else 0}
    if known is not None:
        meta["benign"] = {"id": known.id, "reason": known.reason}
    if rule is not None:
        meta["unnamed_rule"] = rule.id
    log_row = _log_row(entry, hostname, source_key, severity, unit, meta)
    triggers = []
    for p in alarms:
        if known is None:
            t = _trigger(entry, hostname, unit, "journal_pattern", p.id, p.severity, p.subsystem, p.description)
        else:
            t = _trigger(entry, hostname, unit, "journal_pattern", p.id, _capped(p.severity, known.severity),
                         p.subsystem, f"{p.description}; known benign ({known.reason})")
            t["metadata"]["benign"] = {"id": known.id, "reason": known.reason}
        triggers.append(t)
    for t in triggers:
        if t["pattern_id"] in AUTH_PATTERNS and (src := auth_source(entry.message)):
            # From the whole message: the reason keeps only its first 300 characters.
            t["metadata"]["source"] = src
    # A line no pattern names is raised only when its rule says so (an emergency line, alarming words), and
    # never when a benign entry recognises it.
    if rule is not None and rule.raise_event and known is None:
        triggers.append(_trigger(entry, hostname, unit, "journal_unnamed", rule.id, rule.severity, "journal",
                                 rule.description))
    return Detection(log_row, triggers)


def with_signals(d: Detection | None, entry: JournalEntry, hostname: str, source_key: str,
                 signals: Sequence[str]) -> Detection:
    """The entry's detection noting the correlation signals it matched (macha.monitor.detect.correlate); an entry
    that gave none is kept as an info log event raising nothing, for the correlation rules that need it."""
    if d is None:
        unit = entry.unit or entry.identifier
        return Detection(_log_row(entry, hostname, source_key, Severity.INFO, unit,
                                  {**entry.fields(), "matched": 1, "signals": list(signals)}), [])
    d.log_row["metadata"]["signals"] = list(signals)
    return d


def signals_of(log_row: dict[str, Any]) -> list[str]:
    return list((log_row.get("metadata") or {}).get("signals") or ())


def _log_row(entry: JournalEntry, hostname: str, source_key: str, severity: str, unit: str | None,
             meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "time": entry.time,
        "hostname": hostname,
        "severity": severity,
        "message": entry.message,
        "unit": unit,
        "source": source_key,
        "entry_key": entry_key(entry),
        "metadata": meta,
    }


def _capped(severity: str, ceiling: str) -> Severity:
    """The less severe of the two: a known-benign line is never raised above its entry's severity."""
    return Severity(max(severity, ceiling, key=SEVERITY_RANK.__getitem__))


#: The process id of systemd's system manager. Only it speaks for system units ("x.service: Failed ..."); a user's
#: own systemd --user logs the same words about the user's units.
SYSTEM_MANAGER_PID = 1


def sender(entry: JournalEntry) -> dict[str, Any]:
    """Who wrote the entry, from journald's trusted fields only, and whether that sender can be believed about the
    system: the kernel (kernel transport) or a root process. Fields journald did not record (a journal exported
    without them) make an unknown sender, which is not trusted either."""
    trusted = entry.transport in ("kernel", "audit") or entry.uid == 0
    return {"uid": entry.uid, "pid": entry.sender_pid, "comm": entry.comm, "transport": entry.transport,
            "systemd_unit": entry.systemd_unit, "trusted": trusted,
            "system_manager": entry.sender_pid == SYSTEM_MANAGER_PID}


def _trigger(entry: JournalEntry, hostname: str, unit: str | None, trigger_type: str, pattern_id: str,
             severity: str, subsystem: str, description: str) -> dict[str, Any]:
    return {
        "time": entry.time,
        "hostname": hostname,
        "trigger_type": trigger_type,
        "trigger_reason": f"{description}: {entry.message[:300]}",
        "severity": severity,
        "pattern_id": pattern_id,
        "fingerprint": fingerprint(pattern_id, unit, entry.message),
        "metadata": {"subsystem": subsystem, "unit": unit, "sender": sender(entry)},
    }


def state_trigger(hostname: str, time: Any, trigger_type: str, pattern_id: str, severity: str, reason: str,
                  series: str, meta: dict[str, Any]) -> dict[str, Any]:
    """A trigger row for a state change (a metric threshold, a service), grouped by what changed and where."""
    return {
        "time": time,
        "hostname": hostname,
        "trigger_type": trigger_type,
        "trigger_reason": reason,
        "severity": severity,
        "pattern_id": pattern_id,
        "fingerprint": hashlib.sha256(f"{pattern_id}\x1f{series}".encode()).hexdigest()[:32],
        "metadata": meta,
        "last_seen": time,
    }
