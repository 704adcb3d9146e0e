"""Running sysstat's ``sadf -j`` on one daily file: its JSON document, or a one-line note saying why not."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

#: CPU (-u), memory (-r), swap (-S), load (-q), I/O totals (-b), block devices (-d, with -p for sda rather than
#: dev8-0 on sysstat < 12) and network interfaces (-n DEV). An activity the file lacks is simply left out.
SAR_OPTIONS = ("-u", "-r", "-S", "-q", "-b", "-d", "-p", "-n", "DEV")
SADF_TIMEOUT = 120.0
# printf("%.2f") of a NaN or an infinity is not JSON; sysstat can print one for a counter that wrapped.
_NON_FINITE = re.compile(r"(?<=[\s:,\[])-?(?:nan|inf)(?=[\s,\]\}])", re.IGNORECASE)


def _sadf_env() -> dict[str, str]:
    # C locale: sysstat prints numbers with printf, and a locale with a decimal comma would break the JSON; it
    # also keeps the error messages in English for the checks below. S_TIME_* would change the time format.
    env = {k: v for k, v in os.environ.items() if not k.startswith("S_TIME_")}
    env["LC_ALL"] = "C"
    return env


def _sadf_version(sadf: str) -> str:
    try:
        out = subprocess.run([sadf, "-V"], capture_output=True, text=True, timeout=10, env=_sadf_env())
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    m = re.search(r"version\s+(\S+)", out.stdout + out.stderr)
    return m.group(1) if m else "unknown"


def _explain(path: Path, stderr: str, sadf: str) -> str:
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    if not lines:
        return f"{path}: sadf failed without a message"
    if any("Invalid system activity file" in ln for ln in lines):
        # sadf adds which version wrote the file and how to convert it; keep the facts, not the instructions.
        facts = [ln.replace(f": {path.absolute()}", "") for ln in lines[:3] if not ln.startswith("Try to convert")]
        hint = f"corrupt, not a SAR file, or written by another sysstat version than this sadf ({_sadf_version(sadf)})"
        if any("cannot read the format" in ln for ln in facts):
            hint += f"; convert it with: sadf -c {path} > {path.name}.new"
        return f"{path}: {'; '.join(facts)} ({hint})"
    return f"{path}: sadf failed: {lines[0]}"


def read_sadf(path: Path, sadf: str, timeout: float = SADF_TIMEOUT) -> tuple[dict[str, Any] | None, str | None]:
    """sadf's JSON for one file, or None and a note naming the file. A note may also come with data."""
    # An absolute path: sadf would read a name like "-1" as "the file of one day ago".
    argv = [sadf, "-j", str(path.absolute()), "--", *SAR_OPTIONS]
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=timeout, env=_sadf_env())
    except subprocess.TimeoutExpired:
        return None, f"{path}: sadf took longer than {timeout:g}s, skipped"
    except OSError as exc:
        return None, f"{path}: cannot run sadf: {exc}"
    stderr = proc.stderr.decode("utf-8", errors="replace")
    if proc.returncode != 0:
        return None, _explain(path, stderr, sadf)
    out = proc.stdout.decode("utf-8", errors="replace")
    try:
        data = json.loads(out)
    except json.JSONDecodeError:
        try:
            data = json.loads(_NON_FINITE.sub("null", out))
        except json.JSONDecodeError as exc:
            first = stderr.strip().splitlines()[0] if stderr.strip() else f"invalid JSON ({exc})"
            return None, f"{path}: sadf output could not be read: {first}"
    if not isinstance(data, dict):
        return None, f"{path}: sadf output is not a sysstat JSON document"
    note = None
    if "unexpected" in stderr:
        # sadc appends a record at a time; a file read mid-write, or cut short, ends in a partial record.
        note = f"{path}: ends in a partial record (still being written, or truncated); the complete samples were read"
    return data, note
