"""Turn journal entries into log events and trigger events (rows, not yet stored)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from macha.core.severity import Severity, worst
from macha.monitor.collect.journal import JournalEntry
from macha.monitor.detect.grouping import AUTH_PATTERNS, auth_source
from macha.monitor.detect.catalog import Pattern
from macha.monitor.detect.matcher import Matcher

# syslog priorities: 0 emerg, 1 alert, 2 crit, 3 err, 4 warning ...
PRIORITY_SEVERITY = {0: Severity.CRITICAL, 1: Severity.CRITICAL, 2: Severity.HIGH, 3: Severity.MEDIUM, 4: Severity.LOW}
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
           matches: list[Pattern] | None = None) -> Detection | None:
    """None for entries that are neither a pattern match nor of error priority (they are not kept). ``matches``:
    the patterns the entry matched, when the caller matched a whole batch at once."""
    if matches is None:
        matches = matcher.match(entry.message)
    prio_severity = PRIORITY_SEVERITY.get(entry.priority) if entry.priority is not None else None
    if not matches and (entry.priority is None or entry.priority > 3):
        return None
    if matches:
        severity = worst(p.severity for p in matches)
    else:
        severity = prio_severity or Severity.MEDIUM
    unit = entry.unit or entry.identifier
    log_row = {
        "time": entry.time,
        "hostname": hostname,
        "severity": severity,
        "message": entry.message,
        "unit": unit,
        "source": source_key,
        "entry_key": entry_key(entry),
        # Whether a pattern matched: a repeat joins its group without a trigger row of its own, and the
        # classifier must still know the line was matched.
        "metadata": {**entry.fields(), "matched": 1 if matches else 0},
    }
    triggers = [
        _trigger(entry, hostname, unit, "journal_pattern", p.id, p.severity, p.subsystem, p.description)
        for p in matches
    ]
    for t in triggers:
        if t["pattern_id"] in AUTH_PATTERNS and (src := auth_source(entry.message)):
            # From the whole message: the reason keeps only its first 300 characters.
            t["metadata"]["source"] = src
    # An emergency/alert/critical line that no pattern knows is still worth a review.
    if not matches and entry.priority is not None and entry.priority <= 2:
        triggers.append(
            _trigger(entry, hostname, unit, "journal_priority", f"priority_{entry.priority}", severity, "journal",
                     f"journal priority {entry.priority}")
        )
    return Detection(log_row, triggers)


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
