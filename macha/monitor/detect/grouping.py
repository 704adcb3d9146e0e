"""Grouping of repeated trigger events (Alertmanager-style) and authentication storms, with their state in the
database so that a restart neither forgets a window nor alerts again for what it already counted.

A trigger event is a group: a repeat of its fingerprint (pattern, unit, message with numbers masked) within
``grouping.window`` seconds of the group's last event adds to its count. A group older than ``repeat_interval``
takes no more repeats: a problem that goes on is raised again, once per interval, not never.
An authentication storm is ``authStormThreshold`` failures from one source (address) within ``authStormWindow``
seconds: one high event naming the source and the count, raised once per window.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from macha.config import GroupingSettings
from macha.core.severity import Severity
from macha.store.models import AuthWindow, TriggerEvent
from macha.store.ops import insert_ignore, upsert_many

#: A group takes repeats for at most this long after its first event; then a repeat opens a new group.
REPEAT_INTERVAL = timedelta(hours=1)
AUTH_PATTERNS = frozenset({"ssh_auth_failure", "ssh_invalid_user", "ssh_too_many_failures", "pam_auth_failure",
                           "sudo_auth_failure", "krb_auth_failure"})
_ADDR = r"((?:\d{1,3}\.){3}\d{1,3}|[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7}|[A-Za-z0-9.-]+\.[A-Za-z]{2,})"
# Where the text before or after the address is the attacker's to choose (a user name), take the occurrence the
# logger wrote last (sshd: "... from ADDR port N", after the user) or first (PAM: "rhost=ADDR  user=NAME").
_RHOST = re.compile(r"\brhost=" + _ADDR)
_FROM_PORT = re.compile(r"\bfrom\s+" + _ADDR + r"\s+port\s+\d+")
_FROM = re.compile(r"\bfrom\s+" + _ADDR)
_SSH_USER = re.compile(r"\b(?:Accepted|Failed) \S+ for (?:invalid user )?(\S+) from \S+ port \d+")
_SSH_INVALID = re.compile(r"\bInvalid user (\S+) from ")
_PAM_USER = re.compile(r"\buser=(\S+)")


@dataclass
class Stored:
    #: (id, severity) of the events created (new groups and storms)
    new: list[tuple[int, str]] = field(default_factory=list)
    #: repeats added to existing groups
    repeats: int = 0
    storms: list[int] = field(default_factory=list)


def auth_source(text: str) -> str | None:
    """The address an authentication failure came from, read from the whole message."""
    for rx, pick in ((_FROM_PORT, -1), (_RHOST, 0), (_FROM, -1)):
        found = rx.findall(text)
        if found:
            return found[pick][:255]
    return None


def auth_account(text: str) -> str | None:
    """The account a login (failed or accepted) was for, read like ``auth_source``: sshd names it before "from"
    ("Failed password for invalid user NAME from", "Accepted publickey for NAME from"), PAM after "user=". A
    failure's name is the client's to choose: it is shown, never trusted."""
    for rx in (_SSH_USER, _SSH_INVALID, _PAM_USER):
        found = rx.findall(text)
        if found:
            return found[-1][:255]
    return None


def store_triggers(s: Session, rows: list[dict[str, Any]], cfg: GroupingSettings) -> Stored:
    """Insert trigger rows as new groups or add them to open ones; then look for authentication storms."""
    out = Stored()
    if not rows:
        return out
    rows = sorted(rows, key=lambda r: r["time"])
    window = timedelta(seconds=cfg.window)
    keys = {(r["hostname"], r["fingerprint"]) for r in rows}
    open_groups: dict[tuple[str, str], dict[str, Any]] = {}
    if cfg.window > 0:
        earliest = rows[0]["time"] - window
        for tid, host, fp, first, last in s.execute(
            select(TriggerEvent.id, TriggerEvent.hostname, TriggerEvent.fingerprint, TriggerEvent.time,
                   TriggerEvent.last_seen)
            .where(TriggerEvent.hostname.in_({h for h, _ in keys}),
                   TriggerEvent.fingerprint.in_({f for _, f in keys}), TriggerEvent.last_seen >= earliest)
            .order_by(TriggerEvent.id)
        ):
            if (host, fp) in keys:
                open_groups[(host, fp)] = {"id": tid, "first": first, "last": last, "add": 0}
    fresh: list[dict[str, Any]] = []
    for row in rows:
        key = (row["hostname"], row["fingerprint"])
        g = open_groups.get(key)
        if g is not None and row["time"] - g["last"] <= window and row["time"] - g["first"] < REPEAT_INTERVAL:
            g["last"] = max(g["last"], row["time"])
            if "row" in g:
                g["row"]["count"] += 1
                g["row"]["last_seen"] = g["last"]
            else:
                g["add"] += 1
            out.repeats += 1
            continue
        new = {**row, "count": 1, "last_seen": row["time"]}
        fresh.append(new)
        open_groups[key] = {"row": new, "first": row["time"], "last": row["time"]}
    out.new = [(tid, sev) for tid, sev in
               insert_ignore(s, TriggerEvent.__table__, fresh, returning=("id", "severity"))]
    grown = [{"gid": g["id"], "add": g["add"], "seen": g["last"]} for g in open_groups.values()
             if "id" in g and g["add"]]
    if grown:
        t = TriggerEvent.__table__
        s.execute(update(t).where(t.c.id == bindparam("gid"))
                  .values(count=t.c.count + bindparam("add"), last_seen=bindparam("seen")),
                  grown, execution_options={"synchronize_session": False})
    storms = _auth_storms(s, [r for r in rows if r.get("pattern_id") in AUTH_PATTERNS], cfg)
    out.storms = [tid for tid, _ in storms]
    out.new += storms
    return out


def _auth_storms(s: Session, failures: list[dict[str, Any]], cfg: GroupingSettings) -> list[tuple[int, str]]:
    if not failures:
        return []
    span = timedelta(seconds=cfg.auth_storm_window)
    by_source: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for f in failures:
        src = (f.get("metadata") or {}).get("source") or auth_source(f["trigger_reason"])
        if src:
            by_source.setdefault((f["hostname"], src), []).append(f)
    if not by_source:
        return []
    state = {(w.hostname, w.source): w for w in s.execute(
        select(AuthWindow).where(AuthWindow.hostname.in_({h for h, _ in by_source}),
                                 AuthWindow.source.in_({src for _, src in by_source}))
    ).scalars()}
    created: list[tuple[int, str]] = []
    windows = []
    for (host, src), fails in by_source.items():
        w = state.get((host, src))
        start, n, storm = (w.window_start, w.count, w.storm_event_id) if w else (None, 0, None)
        last_time: datetime | None = None
        for f in fails:
            if start is None or f["time"] - start > span:
                start, n, storm = f["time"], 0, None
            n += 1
            last_time = f["time"]
            if n >= cfg.auth_storm_threshold and storm is None:
                row = _storm_row(f, src, n, cfg)
                (tid, sev), = insert_ignore(s, TriggerEvent.__table__, [row], returning=("id", "severity"))
                storm = tid
                created.append((tid, sev))
        if storm is not None and last_time is not None:
            patterns = sorted({f["pattern_id"] for f in fails})
            s.execute(update(TriggerEvent).where(TriggerEvent.id == storm).values(
                count=n, last_seen=last_time, trigger_reason=_storm_reason(src, n, cfg, patterns)))
        windows.append({"hostname": host, "source": src, "window_start": start, "count": n, "storm_event_id": storm})
    upsert_many(s, AuthWindow.__table__, windows, keys=["hostname", "source"],
                update=["window_start", "count", "storm_event_id"])
    return created


def _storm_reason(src: str, n: int, cfg: GroupingSettings, patterns: list[str]) -> str:
    return (f"authentication storm: {n} failures from {src} within {cfg.auth_storm_window} s "
            f"({', '.join(patterns)})")


def _storm_row(f: dict[str, Any], src: str, n: int, cfg: GroupingSettings) -> dict[str, Any]:
    return {
        "time": f["time"], "last_seen": f["time"], "count": n, "hostname": f["hostname"],
        "trigger_type": "auth_storm", "pattern_id": "auth_storm", "severity": Severity.HIGH,
        "trigger_reason": _storm_reason(src, n, cfg, [f["pattern_id"]]),
        "fingerprint": hashlib.sha256(f"auth_storm\x1f{src}".encode()).hexdigest()[:32],
        "log_event_id": f.get("log_event_id"),
        "metadata": {"subsystem": "auth", "source": src, "unit": (f.get("metadata") or {}).get("unit")},
    }
