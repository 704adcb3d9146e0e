"""Build real journal files for tests: journal export format -> systemd-journal-remote -> *.journal."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"
BOOT_ID = "0123456789abcdef0123456789abcdef"
BASE_USEC = 1_700_000_000_000_000


@dataclass
class Entry:
    message: str | bytes
    priority: int = 6
    identifier: str = "kernel"
    unit: str | None = None
    transport: str = "kernel"
    pid: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _field(name: str, value: str | bytes) -> bytes:
    data = value if isinstance(value, bytes) else value.encode()
    if b"\n" in data or isinstance(value, bytes):
        # Binary-safe form of the export format: name, newline, 64-bit LE length, data.
        return name.encode() + b"\n" + len(data).to_bytes(8, "little") + data + b"\n"
    return name.encode() + b"=" + data + b"\n"


def export_bytes(entries: Iterable[Entry], start_usec: int = BASE_USEC, hostname: str = "testhost",
                 offsets_usec: list[int] | None = None) -> bytes:
    out = bytearray()
    for i, e in enumerate(entries):
        offset = offsets_usec[i] if offsets_usec is not None else i * 1000
        out += _field("__REALTIME_TIMESTAMP", str(start_usec + offset))
        out += _field("__MONOTONIC_TIMESTAMP", str(1_000_000 + offset))
        out += _field("_BOOT_ID", BOOT_ID)
        out += _field("_HOSTNAME", hostname)
        out += _field("_TRANSPORT", e.transport)
        out += _field("SYSLOG_IDENTIFIER", e.identifier)
        out += _field("PRIORITY", str(e.priority))
        if e.unit:
            out += _field("_SYSTEMD_UNIT", e.unit)
        if e.pid is not None:
            out += _field("_PID", str(e.pid))
        for k, v in e.extra.items():
            out += _field(k, v)
        out += _field("MESSAGE", e.message)
        out += b"\n"
    return bytes(out)


def have_journal_remote() -> bool:
    return Path(JOURNAL_REMOTE).exists() and shutil.which("journalctl") is not None


def build_journal(entries: Iterable[Entry], out: Path, **kw) -> Path:
    """Write ``out`` (must end in .journal) from entries, through the real systemd-journal-remote."""
    assert out.name.endswith(".journal")
    export = out.with_suffix(".export")
    export.write_bytes(export_bytes(entries, **kw))
    proc = subprocess.run([JOURNAL_REMOTE, "-o", str(out), str(export)], capture_output=True, text=True)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"systemd-journal-remote failed: {proc.stderr}")
    export.unlink()
    return out
