"""Service states from systemd: `systemctl show` for the configured critical units and `systemctl list-units
--failed --output=json` for everything else that failed. Read only; the judging is in
macha.monitor.checks.services."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

from macha.actions.runner import clean_env, resolve
from macha.core.errors import MachaError

PROPERTIES = ("Id", "LoadState", "ActiveState", "SubState", "Result", "NRestarts")
TIMEOUT = 15


class ServiceError(MachaError):
    pass


@dataclass(frozen=True)
class UnitState:
    unit: str
    load: str
    active: str
    sub: str
    result: str = ""
    restarts: int = 0


def _systemctl(*args: str) -> str:
    try:
        proc = subprocess.run([resolve("systemctl"), *args], capture_output=True, text=True, timeout=TIMEOUT,
                              env=clean_env(), stdin=subprocess.DEVNULL)
    except FileNotFoundError as exc:
        raise ServiceError(f"cannot read service states: {exc}") from None
    except subprocess.TimeoutExpired:
        raise ServiceError(f"cannot read service states: systemctl {args[0]} took over {TIMEOUT} s") from None
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise ServiceError(f"cannot read service states: systemctl {args[0]}: {detail[:200]}")
    return proc.stdout


def parse_show(text: str) -> list[UnitState]:
    """`systemctl show` output for several units: KEY=VALUE lines, one blank line between units."""
    states = []
    for block in text.strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if "Id" not in props:
            continue
        try:
            restarts = int(props.get("NRestarts") or 0)
        except ValueError:
            restarts = 0
        states.append(UnitState(props["Id"], props.get("LoadState", ""), props.get("ActiveState", ""),
                                props.get("SubState", ""), props.get("Result", ""), restarts))
    return states


def show(units: list[str]) -> list[UnitState]:
    if not units:
        return []
    return parse_show(_systemctl("show", f"--property={','.join(PROPERTIES)}", "--", *units))


def parse_failed(text: str) -> list[UnitState]:
    try:
        rows = json.loads(text or "[]")
    except ValueError:
        raise ServiceError("systemctl list-units --output=json printed something that is not JSON") from None
    return [UnitState(r.get("unit", "?"), r.get("load", ""), r.get("active", ""), r.get("sub", ""))
            for r in rows if isinstance(r, dict)]


def failed_units() -> list[UnitState]:
    return parse_failed(_systemctl("list-units", "--failed", "--all", "--output=json", "--no-pager"))
