"""Read the systemd journal through `journalctl -o json`, from a cursor, to the end, in bounded batches.

No line cap: a burst is read whole. The caller stores each batch together with the cursor of its last entry, so a
crash re-reads from the last committed batch and never skips an entry.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from macha.errors import JournalError

TRUNCATION_MARKER = " …[truncated {n} characters]"


@dataclass(frozen=True)
class JournalSource:
    """Where entries come from: the system journal, one journal file, or a journal directory."""

    kind: Literal["system", "file", "dir"] = "system"
    path: Path | None = None

    @classmethod
    def file(cls, path: str | Path) -> JournalSource:
        return cls("file", Path(path).resolve())

    @classmethod
    def directory(cls, path: str | Path) -> JournalSource:
        return cls("dir", Path(path).resolve())

    @property
    def key(self) -> str:
        """Names the source in the cursor table."""
        return "system" if self.kind == "system" else f"{self.kind}:{self.path}"

    def argv(self) -> list[str]:
        if self.kind == "file":
            return ["--file", str(self.path)]
        if self.kind == "dir":
            return ["--directory", str(self.path)]
        return []

    def check_readable(self) -> None:
        if self.kind == "system" or self.path is None:
            return
        if not self.path.exists():
            raise JournalError(f"journal {self.kind} {self.path} does not exist")
        if self.kind == "file" and not self.path.is_file():
            raise JournalError(f"journal file {self.path} is not a file")
        if self.kind == "file" and not self.path.name.endswith(".journal"):
            raise JournalError(f"journal file {self.path} must end in .journal (journalctl ignores other names)")
        if not os.access(self.path, os.R_OK):
            raise JournalError(f"journal {self.kind} {self.path} is not readable by this user (permission denied)")


@dataclass(frozen=True)
class JournalEntry:
    cursor: str
    time: datetime
    message: str
    priority: int | None
    unit: str | None
    identifier: str | None
    pid: int | None
    comm: str | None
    boot_id: str | None
    hostname: str | None
    transport: str | None

    def fields(self) -> dict[str, Any]:
        """The journal fields kept in the store's metadata column."""
        return {
            "cursor": self.cursor,
            "priority": self.priority,
            "identifier": self.identifier,
            "pid": self.pid,
            "comm": self.comm,
            "boot_id": self.boot_id,
            "journal_hostname": self.hostname,
            "transport": self.transport,
        }


class CursorInvalid(JournalError):
    """journalctl refused the stored cursor (journal vacuumed or replaced)."""


def _text(value: Any) -> str | None:
    """A journal field as text: journalctl gives non-UTF-8 fields as arrays of byte values."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        if all(isinstance(v, int) for v in value):
            return bytes(v & 0xFF for v in value).decode("utf-8", errors="replace")
        # A field that occurs more than once in one entry: keep the first.
        return _text(value[0]) if value else None
    return str(value)


def _int(value: Any) -> int | None:
    text = _text(value)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def parse_entry(raw: dict[str, Any], max_message: int) -> JournalEntry | None:
    cursor = _text(raw.get("__CURSOR"))
    if not cursor:
        return None
    usec = _int(raw.get("__REALTIME_TIMESTAMP")) or 0
    message = _text(raw.get("MESSAGE")) or ""
    if len(message) > max_message:
        message = message[:max_message] + TRUNCATION_MARKER.format(n=len(message) - max_message)
    return JournalEntry(
        cursor=cursor,
        time=datetime.fromtimestamp(usec / 1_000_000, tz=timezone.utc),
        message=message,
        priority=_int(raw.get("PRIORITY")),
        unit=_text(raw.get("_SYSTEMD_UNIT")) or _text(raw.get("UNIT")),
        identifier=_text(raw.get("SYSLOG_IDENTIFIER")) or _text(raw.get("_COMM")),
        pid=_int(raw.get("_PID")) or _int(raw.get("SYSLOG_PID")),
        comm=_text(raw.get("_COMM")),
        boot_id=_text(raw.get("_BOOT_ID")),
        hostname=_text(raw.get("_HOSTNAME")),
        transport=_text(raw.get("_TRANSPORT")),
    )


def _journalctl() -> str:
    exe = shutil.which("journalctl")
    if exe is None:
        raise JournalError("journalctl was not found on PATH: install systemd (Debian: apt-get install systemd)")
    return exe


def _explain_failure(stderr: str, source: JournalSource) -> str:
    first = stderr.strip().splitlines()[0] if stderr.strip() else "no error text"
    if re.search(r"permission denied|not permitted", stderr, re.I):
        return (
            f"journalctl cannot read the {source.key} journal ({first}): run Macha as a member of the "
            "'systemd-journal' group (or 'adm'), or as root"
        )
    return f"journalctl failed on the {source.key} journal: {first}"


def read_batches(
    source: JournalSource,
    *,
    after_cursor: str | None = None,
    since: datetime | None = None,
    batch_size: int = 1000,
    max_message: int = 16384,
) -> Iterator[list[JournalEntry]]:
    """Yield every entry after ``after_cursor`` (or since ``since``, or from the start) in batches."""
    source.check_readable()
    argv = [_journalctl(), "--no-pager", "--output=json", "--all", *source.argv()]
    if after_cursor:
        argv += ["--after-cursor", after_cursor]
    elif since is not None:
        argv += ["--since", f"@{int(since.timestamp())}"]
    with tempfile.TemporaryFile() as errfile:
        # stderr goes to a file so that a chatty journalctl can never block on a full pipe.
        try:
            proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=errfile, env={**os.environ, "SYSTEMD_COLORS": "0"}
            )
        except OSError as exc:
            raise JournalError(f"cannot run journalctl: {exc}") from None
        assert proc.stdout is not None
        batch: list[JournalEntry] = []
        try:
            for line in proc.stdout:
                try:
                    raw = json.loads(line)
                except json.JSONDecodeError:
                    continue  # journalctl prints only JSON objects; skip anything torn
                entry = parse_entry(raw, max_message)
                if entry is None:
                    continue
                batch.append(entry)
                if len(batch) >= batch_size:
                    yield batch
                    batch = []
            rc = proc.wait()
            errfile.seek(0)
            stderr = errfile.read().decode("utf-8", errors="replace")
            if rc != 0:
                if after_cursor and re.search(r"cursor", stderr, re.I):
                    raise CursorInvalid(f"journalctl rejected the stored cursor: {stderr.strip().splitlines()[0]}")
                raise JournalError(_explain_failure(stderr, source))
            if batch:
                yield batch
        finally:
            # Reached early when the consumer stops (an error while storing): do not leave journalctl behind.
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()


_CURSOR_TIME = re.compile(r"(?:^|;)t=([0-9a-f]+)")


def cursor_time(cursor: str) -> datetime | None:
    """The realtime timestamp a journal cursor encodes (hex microseconds), for restarting from a time bound."""
    m = _CURSOR_TIME.search(cursor)
    if not m:
        return None
    return datetime.fromtimestamp(int(m.group(1), 16) / 1_000_000, tz=timezone.utc)
