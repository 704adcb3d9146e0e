"""Does a systemd unit exist here? Asked of `systemctl show` on the host the action would run on."""

from __future__ import annotations

import subprocess

from macha.actions.catalog import ActionRefused
from macha.actions.runner import clean_env, resolve

PROBE_TIMEOUT = 10


def unit_probe(unit: str) -> None:
    """Returns when the unit is known to systemd and not masked; otherwise raises ActionRefused saying why."""
    try:
        proc = subprocess.run(
            [resolve("systemctl"), "show", "--property=LoadState", "--property=LoadError", "--", unit],
            capture_output=True, text=True, timeout=PROBE_TIMEOUT, env=clean_env(), stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError as exc:
        raise ActionRefused(f"cannot check that {unit} exists: {exc}") from None
    except subprocess.TimeoutExpired:
        raise ActionRefused(f"cannot check that {unit} exists: systemctl show took over {PROBE_TIMEOUT} s") from None
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
