"""What Macha sees on its own host, asked directly and never taken from a log line or a model: a unit's state
(`systemctl show`) and a file system's use (statvfs). Action preconditions and risk escalation are judged on this."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from macha.actions.refusal import ActionRefused
from macha.actions.runner import clean_env, resolve

PROBE_TIMEOUT = 10
_PROPERTIES = ("LoadState", "LoadError", "ActiveState", "SubState", "FailureAction", "SuccessAction",
               "StartLimitAction")


@dataclass(frozen=True)
class UnitFacts:
    name: str
    load_state: str
    active_state: str
    sub_state: str
    #: What systemd does when the unit fails, succeeds or hits its start limit ("none", "reboot", "poweroff"...).
    failure_action: str = "none"
    success_action: str = "none"
    start_limit_action: str = "none"


@dataclass(frozen=True)
class DiskUse:
    path: str
    percent: float
    inode_percent: float


class HostProbe(Protocol):
    def unit(self, unit: str) -> UnitFacts: ...

    def disk(self, path: str) -> DiskUse: ...


class LocalProbe:
    """Asks this machine: `systemctl show` for units, statvfs for file systems."""

    def unit(self, unit: str) -> UnitFacts:
        """The unit's state when it is known to systemd and not masked; otherwise raises ActionRefused."""
        try:
            proc = subprocess.run(
                [resolve("systemctl"), "show", *(f"--property={p}" for p in _PROPERTIES), "--", unit],
                capture_output=True, text=True, timeout=PROBE_TIMEOUT, env=clean_env(), stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError as exc:
            raise ActionRefused(f"cannot check that {unit} exists: {exc}") from None
        except subprocess.TimeoutExpired:
            raise ActionRefused(f"cannot check that {unit} exists: systemctl show took over {PROBE_TIMEOUT} s") \
                from None
        props = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
        if proc.returncode != 0 or "LoadState" not in props:
            detail = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[0]
            raise ActionRefused(f"cannot check that {unit} exists: systemctl show: {detail[:200]}")
        state = props["LoadState"]
        if state == "not-found":
            raise ActionRefused(f"unit {unit} does not exist on this host")
        if state == "masked":
            raise ActionRefused(f"unit {unit} is masked")
        if state != "loaded":
            raise ActionRefused(f"unit {unit} cannot be loaded ({state}: {props.get('LoadError', '')[:200]})")
        return UnitFacts(
            name=unit, load_state=state, active_state=props.get("ActiveState", "unknown"),
            sub_state=props.get("SubState", "unknown"), failure_action=props.get("FailureAction") or "none",
            success_action=props.get("SuccessAction") or "none",
            start_limit_action=props.get("StartLimitAction") or "none",
        )

    def disk(self, path: str) -> DiskUse:
        """Use of the file system holding ``path`` (its nearest existing ancestor), as df counts it."""
        where = Path(path)
        while not where.exists() and where != where.parent:
            where = where.parent
        try:
            st = os.statvfs(where)
        except OSError as exc:
            raise ActionRefused(f"cannot measure the file system of {path}: {exc.strerror or exc}") from None
        used = st.f_blocks - st.f_bfree
        usable = used + st.f_bavail
        inodes_used = st.f_files - st.f_ffree
        return DiskUse(
            path=str(where),
            percent=100.0 * used / usable if usable else 0.0,
            inode_percent=100.0 * inodes_used / st.f_files if st.f_files else 0.0,
        )


LOCAL = LocalProbe()
