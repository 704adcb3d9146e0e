"""Build real journal files for tests: journal export format -> systemd-journal-remote -> *.journal."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"
#: The boot every entry belongs to unless a test says otherwise (one test host, one boot).
BOOT_ID = "0123456789abcdef0123456789abcdef"
BASE_USEC = 1_700_000_000_000_000
#: When that boot began (realtime): an entry's monotonic clock is its realtime minus this, so every file built
#: for one directory agrees on the order of its entries. journalctl orders entries of one boot by the monotonic
#: clock; when it restarted at 1 s in each file, a later file's first entries sorted before an earlier file's
#: last one, and `--after-cursor` silently skipped them.
BOOT_REALTIME_USEC = 0


@dataclass
class Entry:
    message: str | bytes
    priority: int = 6
    identifier: str = "kernel"
    unit: str | None = None
    transport: str = "kernel"
    pid: int | None = None
    uid: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _field(name: str, value: str | bytes) -> bytes:
    data = value if isinstance(value, bytes) else value.encode()
    if b"\n" in data or isinstance(value, bytes):
        # Binary-safe form of the export format: name, newline, 64-bit LE length, data.
        return name.encode() + b"\n" + len(data).to_bytes(8, "little") + data + b"\n"
    return name.encode() + b"=" + data + b"\n"


def export_bytes(entries: Iterable[Entry], start_usec: int = BASE_USEC, hostname: str = "testhost",
                 offsets_usec: list[int] | None = None, boot_id: str = BOOT_ID) -> bytes:
    out = bytearray()
    for i, e in enumerate(entries):
        offset = offsets_usec[i] if offsets_usec is not None else i * 1000
        realtime = start_usec + offset
        assert realtime >= BOOT_REALTIME_USEC, "an entry cannot be older than its boot"
        out += _field("__REALTIME_TIMESTAMP", str(realtime))
        out += _field("__MONOTONIC_TIMESTAMP", str(realtime - BOOT_REALTIME_USEC))
        out += _field("_BOOT_ID", boot_id)
        out += _field("_HOSTNAME", hostname)
        out += _field("_TRANSPORT", e.transport)
        out += _field("SYSLOG_IDENTIFIER", e.identifier)
        out += _field("PRIORITY", str(e.priority))
        if e.unit:
            out += _field("_SYSTEMD_UNIT", e.unit)
        if e.pid is not None:
            out += _field("_PID", str(e.pid))
        if e.uid is not None:
            out += _field("_UID", str(e.uid))
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


def append_journal(directory: Path, entries: Iterable[Entry]) -> float:
    """Append entries (stamped now) to DIR/remote.journal with systemd-journal-remote; returns when it is written."""
    import time

    export = directory.parent / f"append-{time.monotonic_ns()}.export"
    export.write_bytes(export_bytes(entries, start_usec=int(time.time() * 1e6)))
    subprocess.run([JOURNAL_REMOTE, "-o", str(directory / "remote.journal"), str(export)], check=True,
                   capture_output=True)
    export.unlink()
    return time.monotonic()
