"""Facts about the local host for the context window's header: OS, kernel, uptime, NixOS generation."""

from __future__ import annotations

import os
import platform
import re
import time
from pathlib import Path
from typing import Any

import psutil

from macha import __version__

#: /nix/var/nix/profiles/system -> system-123-link: the generation the system booted into or switched to last.
SYSTEM_PROFILE = Path("/nix/var/nix/profiles/system")
_GENERATION = re.compile(r"system-(\d+)-link$")


def _os_release(path: Path = Path("/etc/os-release")) -> str | None:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    name = fields.get("PRETTY_NAME") or fields.get("NAME")
    return name.strip().strip('"') if name else None


def _uptime(seconds: float) -> str:
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    return f"{days}d {hours}h {rest // 60}m" if days else f"{hours}h {rest // 60}m"


def nixos_generation(profile: Path = SYSTEM_PROFILE) -> str | None:
    try:
        target = os.readlink(profile)
    except OSError:
        return None
    m = _GENERATION.search(target)
    return m[1] if m else target


def host_facts() -> dict[str, Any]:
    uname = platform.uname()
    facts: dict[str, Any] = {
        "os": _os_release(),
        "kernel": f"{uname.system} {uname.release} {uname.machine}",
        "uptime": _uptime(time.time() - psutil.boot_time()),
        "cpus": psutil.cpu_count(),
        "memory_total": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "macha_version": __version__,
    }
    generation = nixos_generation()
    if generation:
        facts["nixos_generation"] = generation
    return {k: v for k, v in facts.items() if v is not None}
