"""Read the systemd journal through `journalctl -o json`, from a cursor, to the end, in bounded batches.

No line cap: a burst is read whole. The caller stores each batch together with the cursor of its last entry, so a
crash re-reads from the last committed batch and never skips an entry.
"""

from __future__ import annotations

import base64
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

from macha.core.errors import JournalError
from macha.core.text import cap, one_line, storable

TRUNCATION_MARKER = " …[truncated {n} characters]"
#: Longest unit, identifier or other name kept: the store's name columns are VARCHAR(255), and PostgreSQL refuses
#: a longer value where SQLite would keep it (systemd's own unit names are at most 255 characters long).
NAME_LIMIT = 255


@dataclass(frozen=True)
class JournalSource:
    """Where entries come from: the system journal, one journal file, or a journal directory."""

    kind: Literal["system", "file", "dir"] = "system"
    path: Path | None = None
    #: Only the entries of this _HOSTNAME (a recorded directory may hold several hosts' journals).
    only_host: str | None = None

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
        # A match is a positional argument: the value cannot be read as an option ("_HOSTNAME=-x" is a match).
        match = [f"_HOSTNAME={self.only_host}"] if self.only_host else []
        if self.kind == "file":
            return ["--file", str(self.path), *match]
        if self.kind == "dir":
            return ["--directory", str(self.path), *match]
        return match

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
    #: Who sent the entry, from journald's trusted fields only (underscore-prefixed, set by journald and never by
    #: the client): the sender's uid and pid, and the unit journald attributes it to. UNIT, SYSLOG_IDENTIFIER and
    #: SYSLOG_PID are the client's own claims and any local user can write them.
    uid: int | None = None
    sender_pid: int | None = None
    systemd_unit: str | None = None
    #: The message's bytes as journald holds them, when its text had to differ from them to be stored (invalid
    #: UTF-8 replaced, NUL escaped); at most ``max_message`` bytes.
    raw_message: bytes | None = None

    def fields(self) -> dict[str, Any]:
        """The journal fields kept in the store's metadata column."""
        raw = {"message_base64": base64.b64encode(self.raw_message).decode()} if self.raw_message is not None else {}
        return {
            "cursor": self.cursor,
            "priority": self.priority,
            "identifier": self.identifier,
            "pid": self.pid,
            "comm": self.comm,
            "boot_id": self.boot_id,
            "journal_hostname": self.hostname,
            "transport": self.transport,
            "uid": self.uid,
            "sender_pid": self.sender_pid,
            "systemd_unit": self.systemd_unit,
            **raw,
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


def _name(value: Any) -> str | None:
    """A unit, identifier or other name: one printable line (a UNIT field holding a newline would otherwise break
    every one-line-per-item listing it appears in), storable, at most NAME_LIMIT characters."""
    text = _text(value)
    return cap(one_line(text), NAME_LIMIT) if text is not None else None


def _message(value: Any, max_message: int) -> tuple[str, bytes | None]:
    """The message as storable text, and its raw bytes when that text is not exactly them.

    journalctl gives a message that is not printable UTF-8 as an array of byte values: anyone may log binary."""
    raw: bytes | None = None
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        raw = bytes(v & 0xFF for v in value)
        try:
            text = raw.decode("utf-8")
            lossy = False
        except UnicodeDecodeError:
            text, lossy = raw.decode("utf-8", errors="replace"), True
    else:
        text, lossy = _text(value) or "", False
    safe = storable(text)
    if len(safe) > max_message:
        safe = safe[:max_message] + TRUNCATION_MARKER.format(n=len(safe) - max_message)
    keep_raw = raw is not None and (lossy or safe != text)
    return safe, raw[:max_message] if keep_raw and raw is not None else None


def _int(value: Any) -> int | None:
    text = _text(value)
    try:
        number = int(text) if text is not None else None
    except ValueError:
        return None
    # A field is the sender's to write: a 400-digit "PID" is no number a column or a comparison should meet.
    return number if number is None or -(2**63) <= number < 2**63 else None


def parse_entry(raw: dict[str, Any], max_message: int) -> JournalEntry | None:
    cursor = _text(raw.get("__CURSOR"))
    if not cursor:
        return None
    usec = _int(raw.get("__REALTIME_TIMESTAMP")) or 0
    # Every text field is made storable here, the one place journal text enters Macha: a NUL or a lone surrogate
    # in one entry would otherwise make PostgreSQL refuse the whole batch, and with it the cursor.
    message, raw_message = _message(raw.get("MESSAGE"), max_message)
    return JournalEntry(
        cursor=cursor,
        time=datetime.fromtimestamp(usec / 1_000_000, tz=timezone.utc),
        message=message,
        priority=_int(raw.get("PRIORITY")),
        unit=_name(raw.get("_SYSTEMD_UNIT")) or _name(raw.get("UNIT")),
        identifier=_name(raw.get("SYSLOG_IDENTIFIER")) or _name(raw.get("_COMM")),
        pid=_int(raw.get("_PID")) or _int(raw.get("SYSLOG_PID")),
        comm=_name(raw.get("_COMM")),
        boot_id=_name(raw.get("_BOOT_ID")),
        hostname=_name(raw.get("_HOSTNAME")),
        transport=_name(raw.get("_TRANSPORT")),
        uid=_int(raw.get("_UID")),
        sender_pid=_int(raw.get("_PID")),
        systemd_unit=_name(raw.get("_SYSTEMD_UNIT")),
        raw_message=raw_message,
    )


def _journalctl() -> str:
    exe = shutil.which("journalctl")
    if exe is None:
        raise JournalError("journalctl was not found on PATH: install systemd (Debian: apt-get install systemd)")
    return exe


#: More host names than this in one recorded journal is not a recording of a fleet but a mistake.
MAX_JOURNAL_HOSTS = 100


def journal_hostnames(source: JournalSource) -> list[str]:
    """The _HOSTNAME values of a journal file or directory (journalctl -F), sorted, as written (a match needs
    them so; file them under ``host_name(value)``); [] for the system journal (it is this host's) and for a
    journal without any."""
    if source.kind == "system":
        return []
    source.check_readable()
    try:
        done = subprocess.run([_journalctl(), "--no-pager", "--field=_HOSTNAME", *source.argv()], capture_output=True,
                              timeout=120, env={**os.environ, "SYSTEMD_COLORS": "0"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise JournalError(f"cannot list the hosts of journal {source.kind} {source.path}: {exc}") from None
    if done.returncode != 0:
        raise JournalError(_explain_failure(done.stderr.decode(errors="replace"), source))
    names = sorted({n for n in done.stdout.decode(errors="surrogateescape").splitlines() if n.strip()})
    if len(names) > MAX_JOURNAL_HOSTS:
        raise JournalError(f"journal {source.kind} {source.path} holds {len(names)} host names (at most "
                           f"{MAX_JOURNAL_HOSTS}); name one with --hostname")
    return names


def host_name(value: str) -> str:
    """A _HOSTNAME as a host is registered: one printable line, at most a name column long."""
    return cap(one_line(value), NAME_LIMIT)


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
