"""SAR history: import sysstat's daily files (written by sadc) into system_metrics through ``sadf -j`` and
summarise the imported series for a review. (macha.core.calendar turns ``sarCollectFrequency`` into a crontab.)

sadc keeps sampling while Macha is down or busy, so these files fill the gaps between Macha's own samples and
reach back before Macha was installed. Importing is idempotent: rows are keyed by (hostname, metric_name, time)
and inserted with insert-or-ignore, so the same file can be read on every run.

Nothing here raises because sysstat is missing, a file is corrupt or was written by another sysstat version:
each becomes a one-line note in the SarImport report and the other files are still imported.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from macha.store.db import Store
from macha.store.models import Host, SystemMetric
from macha.store.ops import insert_ignore, upsert

#: Where sadc writes its daily files when sarDirectory is unset: Debian/NixOS, then Red Hat.
DEFAULT_DIRECTORIES = (Path("/var/log/sysstat"), Path("/var/log/sa"))
#: CPU (-u), memory (-r), swap (-S), load (-q), I/O totals (-b), block devices (-d, with -p for sda rather than
#: dev8-0 on sysstat < 12) and network interfaces (-n DEV). An activity the file lacks is simply left out.
SAR_OPTIONS = ("-u", "-r", "-S", "-q", "-b", "-d", "-p", "-n", "DEV")
SADF_TIMEOUT = 120.0
#: Rows per INSERT: a day of 10-minute samples is a few thousand rows.
BATCH = 1000
#: A saDD file last written this long before now belongs to an earlier month: sadc reuses the name.
_STALE = timedelta(days=3)
# printf("%.2f") of a NaN or an infinity is not JSON; sysstat can print one for a counter that wrapped.
_NON_FINITE = re.compile(r"(?<=[\s:,\[])-?(?:nan|inf)(?=[\s,\]\}])", re.IGNORECASE)
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.:@+-]")


@dataclass
class SarImport:
    hostname: str
    files: list[str] = field(default_factory=list)
    samples: int = 0
    rows: int = 0
    inserted: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SarRow:
    time: datetime
    name: str
    value: float
    unit: str
    interval: int | None


# --- finding the files --------------------------------------------------------------------------------------------


def find_directory(configured: str | None) -> tuple[Path | None, str | None]:
    """The SAR directory to read, or a note saying why there is none."""
    if configured:
        path = Path(configured)
        if not path.is_dir():
            return None, f"SAR directory {path} (sarDirectory) does not exist or is not a directory"
    else:
        path = next((d for d in DEFAULT_DIRECTORIES if d.is_dir()), None)
        if path is None:
            dirs = " or ".join(str(d) for d in DEFAULT_DIRECTORIES)
            return None, (f"no SAR data directory ({dirs}): sysstat is not collecting "
                          "(NixOS: services.sysstat.enable = true) or set sarDirectory")
    if not os.access(path, os.R_OK | os.X_OK):
        return None, f"SAR directory {path} is not readable by this user (permission denied)"
    return path, None


def daily_files(directory: Path, now: datetime) -> tuple[list[Path], list[str]]:
    """Yesterday's and today's files, oldest first, and notes on what was left out.

    Both names sadc uses: saDD (its default) and saYYYYMMDD (sadc -D); sarDD are sa2's text reports.
    """
    # sadc names its files by the local date, so "today" is the local one; reading yesterday's too covers the
    # samples written around midnight and a day Macha was down.
    today = now.astimezone().date()
    files: list[Path] = []
    notes: list[str] = []
    for day in (today - timedelta(days=1), today):
        for name in (f"sa{day:%d}", f"sa{day:%Y%m%d}"):
            path = directory / name
            if not path.is_file():
                continue
            if len(name) == 4:
                written = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
                if written < now - _STALE:
                    notes.append(f"{path} was last written {written:%Y-%m-%d}: an earlier month's file, skipped")
                    continue
            files.append(path)
    if not files and not notes:
        notes.append(f"no SAR files for {today - timedelta(days=1)} or {today} in {directory} (saDD or saYYYYMMDD)")
    return files, notes


# --- running sadf -------------------------------------------------------------------------------------------------


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


# --- parsing sadf's JSON ------------------------------------------------------------------------------------------


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _first(obj: dict[str, Any], *keys: str) -> float | None:
    """The first of ``keys`` present: sysstat renamed fields between versions (usr/user, aqu-sz/avgqu-sz)."""
    for key in keys:
        v = _num(obj.get(key))
        if v is not None:
            return v
    return None


def _label(name: Any) -> str | None:
    if not isinstance(name, str) or not name:
        return None
    return _UNSAFE_NAME.sub("_", name)[:64]


def sample_time(stamp: Any) -> datetime | None:
    """The UTC time of a statistics record.

    sadf prints UTC unless told otherwise (-T, -t): sysstat < 12.7 marks it ``"utc": 1``, later versions
    ``"tz": "UTC"``. Another zone is honoured when it is a zone name Python knows.
    """
    if not isinstance(stamp, dict):
        return None
    try:
        naive = datetime.strptime(f"{stamp.get('date')} {stamp.get('time')}", "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    tz_name = stamp.get("tz")
    if stamp.get("utc") == 1 or tz_name in ("UTC", "GMT"):
        return naive.replace(tzinfo=timezone.utc)
    if isinstance(tz_name, str) and tz_name:
        try:
            return naive.replace(tzinfo=ZoneInfo(tz_name)).astimezone(timezone.utc)
        except (ZoneInfoNotFoundError, ValueError):
            return None
    return None


# (metric suffix, JSON keys in order of preference, unit)
_CPU = (("user", ("user", "usr"), "%"), ("nice", ("nice",), "%"), ("system", ("system", "sys"), "%"),
        ("iowait", ("iowait",), "%"), ("steal", ("steal",), "%"), ("idle", ("idle",), "%"))
_MEM = (("used_percent", ("memused-percent",), "%"), ("commit_percent", ("commit-percent",), "%"),
        ("free_kb", ("memfree",), "KiB"), ("avail_kb", ("avail",), "KiB"), ("used_kb", ("memused",), "KiB"),
        ("buffers_kb", ("buffers",), "KiB"), ("cached_kb", ("cached",), "KiB"), ("dirty_kb", ("dirty",), "KiB"))
_SWAP = (("used_percent", ("swpused-percent",), "%"), ("used_kb", ("swpused",), "KiB"))
_LOAD = (("avg1", ("ldavg-1",), "load"), ("avg5", ("ldavg-5",), "load"), ("avg15", ("ldavg-15",), "load"),
         ("runq", ("runq-sz",), "tasks"), ("plist", ("plist-sz",), "tasks"), ("blocked", ("blocked",), "tasks"))
_DISK = (("tps", ("tps",), "/s"), ("await", ("await",), "ms"), ("aqu_sz", ("aqu-sz", "avgqu-sz"), "requests"),
         ("util", ("util-percent",), "%"))
_NET = (("rxkb_s", ("rxkB",), "kB/s"), ("txkb_s", ("txkB",), "kB/s"), ("rxpck_s", ("rxpck",), "packets/s"),
        ("txpck_s", ("txpck",), "packets/s"), ("util", ("ifutil-percent",), "%"))


_Spec = tuple[tuple[str, tuple[str, ...], str], ...]


def _fields(obj: Any, prefix: str, spec: _Spec) -> Iterator[tuple[str, float, str]]:
    if not isinstance(obj, dict):
        return
    for suffix, keys, unit in spec:
        v = _first(obj, *keys)
        if v is not None:
            yield f"{prefix}.{suffix}", v, unit


def _record_metrics(stat: dict[str, Any]) -> Iterator[tuple[str, float, str]]:
    """Every metric of one statistics record; an activity the file lacks yields nothing."""
    cpus = stat.get("cpu-load")
    if isinstance(cpus, list):
        # Only the "all" line: per-CPU lines appear only with -P, which would multiply the rows by the cores.
        for cpu in cpus:
            if isinstance(cpu, dict) and cpu.get("cpu") == "all":
                yield from _fields(cpu, "sar.cpu", _CPU)
    mem = stat.get("memory")
    if isinstance(mem, dict):
        yield from _fields(mem, "sar.mem", _MEM)
        if _num(mem.get("memused-percent")) is None:
            used, free = _num(mem.get("memused")), _num(mem.get("memfree"))
            if used is not None and free is not None and used + free > 0:
                yield "sar.mem.used_percent", round(100 * used / (used + free), 2), "%"
        yield from _fields(mem, "sar.swap", _SWAP)
    yield from _fields(stat.get("queue"), "sar.load", _LOAD)
    io = stat.get("io")
    if isinstance(io, dict):
        reads, writes = io.get("io-reads"), io.get("io-writes")
        # Nested since sysstat 10.2; flat before.
        reads = reads if isinstance(reads, dict) else io
        writes = writes if isinstance(writes, dict) else io
        for name, obj, key, unit in (("tps", io, "tps", "/s"), ("rtps", reads, "rtps", "/s"),
                                     ("wtps", writes, "wtps", "/s"), ("bread_s", reads, "bread", "blocks/s"),
                                     ("bwrtn_s", writes, "bwrtn", "blocks/s")):
            v = _num(obj.get(key))
            if v is not None:
                yield f"sar.io.{name}", v, unit
    disks = stat.get("disk")
    if isinstance(disks, list):
        for disk in disks:
            dev = _label(disk.get("disk-device")) if isinstance(disk, dict) else None
            if dev is None:
                continue
            yield from _fields(disk, f"sar.disk.{dev}", _DISK)
            # rkB/wkB since sysstat 12; before, only 512-byte sectors.
            for name, kb, sectors in (("rkb_s", "rkB", "rd_sec"), ("wkb_s", "wkB", "wr_sec")):
                v = _num(disk.get(kb))
                if v is None and (s := _num(disk.get(sectors))) is not None:
                    v = s / 2
                if v is not None:
                    yield f"sar.disk.{dev}.{name}", v, "kB/s"
    network = stat.get("network")
    ifaces = network.get("net-dev") if isinstance(network, dict) else None
    if isinstance(ifaces, list):
        for iface in ifaces:
            name = _label(iface.get("iface")) if isinstance(iface, dict) else None
            if name is None or name == "lo":
                continue
            yield from _fields(iface, f"sar.net.{name}", _NET)


def parse_sadf(data: dict[str, Any]) -> tuple[list[SarRow], int, list[str]]:
    """Rows, the number of samples (statistics records) and notes, from one sadf -j document."""
    rows: list[SarRow] = []
    samples = 0
    bad_times = 0
    hosts = data.get("sysstat", {}).get("hosts") if isinstance(data.get("sysstat"), dict) else None
    if not isinstance(hosts, list):
        return [], 0, ["sadf output has no sysstat.hosts list"]
    for host in hosts:
        stats = host.get("statistics") if isinstance(host, dict) else None
        for stat in stats if isinstance(stats, list) else []:
            if not isinstance(stat, dict):
                continue
            when = sample_time(stat.get("timestamp"))
            if when is None:
                bad_times += 1
                continue
            samples += 1
            interval = stat["timestamp"].get("interval")
            interval = interval if isinstance(interval, int) else None
            rows += [SarRow(when, name, value, unit, interval) for name, value, unit in _record_metrics(stat)]
    notes = [f"{bad_times} sample(s) without a readable UTC timestamp were skipped"] if bad_times else []
    return rows, samples, notes


# --- storing ------------------------------------------------------------------------------------------------------


def _store_rows(store: Store, hostname: str, rows: list[SarRow]) -> int:
    inserted = 0
    with store.session() as s:
        for i in range(0, len(rows), BATCH):
            batch = [{"time": r.time, "hostname": hostname, "metric_name": r.name, "value": r.value,
                      "unit": r.unit, "metadata": {"source": "sar", "interval": r.interval}}
                     for r in rows[i:i + BATCH]]
            inserted += len(insert_ignore(s, SystemMetric.__table__, batch, returning=("id",)))
    return inserted


def _touch_host(store: Store, hostname: str, now: datetime) -> None:
    with store.session() as s:
        upsert(s, Host.__table__, {"hostname": hostname, "first_seen": now, "last_seen": now, "metadata": {}},
               keys=["hostname"], update=["last_seen"])


def import_sar(store: Store, hostname: str, directory: str | None, files: list[Path] | None = None,
               now: datetime | None = None) -> SarImport:
    """Import SAR samples into system_metrics; never raises for a sysstat problem (see the report's notes).

    ``files`` given: exactly those files. Otherwise yesterday's and today's daily files in ``directory``
    (None: /var/log/sysstat or /var/log/sa). Honouring enableSar is the caller's job.
    """
    now = now or datetime.now(timezone.utc)
    report = SarImport(hostname=hostname)
    sadf = shutil.which("sadf")
    if sadf is None:
        report.notes.append("sadf was not found on PATH: install sysstat to import SAR data "
                            "(NixOS: services.sysstat.enable = true; Debian: apt-get install sysstat)")
        return report
    if files is None:
        found, note = find_directory(directory)
        if found is None:
            report.notes.append(note or "no SAR directory")
            return report
        files, notes = daily_files(found, now)
        report.notes += notes
    host_known = False
    for path in files:
        data, note = read_sadf(Path(path), sadf)
        if note:
            report.notes.append(note)
        if data is None:
            continue
        rows, samples, notes = parse_sadf(data)
        report.notes += [f"{path}: {n}" for n in notes]
        report.files.append(str(path))
        report.samples += samples
        report.rows += len(rows)
        if rows and not host_known:
            _touch_host(store, hostname, now)
            host_known = True
        report.inserted += _store_rows(store, hostname, rows)
    return report


# --- summary for the review context -------------------------------------------------------------------------------

#: Distinct metric names of one host from 'sar.' on, one index seek each (a loose index scan): the disks and
#: interfaces are found without reading the host's samples. No prefix range: under a PostgreSQL locale
#: collation the order of '.' is not the byte order, so names are filtered in Python instead.
_NAMES_SQL = text("""
WITH RECURSIVE names(name) AS (
    SELECT MIN(metric_name) FROM system_metrics WHERE hostname = :hostname AND metric_name >= :start
    UNION ALL
    SELECT (SELECT MIN(m.metric_name) FROM system_metrics m WHERE m.hostname = :hostname AND m.metric_name > names.name)
    FROM names WHERE names.name IS NOT NULL
)
SELECT name FROM names WHERE name IS NOT NULL LIMIT :limit
""")

_FIXED = ("sar.cpu.idle", "sar.cpu.iowait", "sar.cpu.steal", "sar.mem.used_percent", "sar.swap.used_percent",
          "sar.load.avg1", "sar.load.runq", "sar.load.blocked", "sar.io.tps")


@dataclass(frozen=True)
class _Agg:
    avg: float
    max: float
    min: float
    count: int


def sar_metric_names(session: Session, hostname: str, limit: int = 5000) -> list[str]:
    names = session.execute(_NAMES_SQL, {"hostname": hostname, "start": "sar.", "limit": limit}).scalars()
    return [n for n in names if n.startswith("sar.")]


def _aggregates(session: Session, hostname: str, names: list[str], since: datetime,
                until: datetime) -> dict[str, _Agg]:
    m = SystemMetric
    stmt = (select(m.metric_name, func.avg(m.value), func.max(m.value), func.min(m.value), func.count())
            .where(m.hostname == hostname, m.metric_name.in_(names), m.time >= since, m.time < until)
            .group_by(m.metric_name))
    return {name: _Agg(float(a), float(mx), float(mn), int(c)) for name, a, mx, mn, c in session.execute(stmt)}


def _span(delta: timedelta) -> str:
    s = max(int(delta.total_seconds()), 0)
    if s >= 86400 and s % 86400 == 0:
        return f"{s // 86400}d"
    if s >= 3600:
        return f"{s // 3600}h" + (f"{s % 3600 // 60}m" if s % 3600 >= 60 else "")
    return f"{max(s // 60, 1)}m"


def _devices(names: list[str], kind: str, suffix: str) -> list[str]:
    prefix = f"sar.{kind}."
    return [n[len(prefix):-len(suffix) - 1] for n in names if n.startswith(prefix) and n.endswith("." + suffix)]


def sar_summary(session: Session, hostname: str, since: datetime, until: datetime, *, top: int = 3,
                now: datetime | None = None) -> list[str]:
    """Short lines on the SAR series of [since, until): CPU, memory, load, the busiest disks and interfaces.

    Empty when there are no SAR samples in the window. Every query is an index range on
    (hostname, metric_name, time).
    """
    now = now or datetime.now(timezone.utc)
    window = (f"last {_span(until - since)}" if abs(now - until) <= timedelta(minutes=5)
              else f"{_span(until - since)} to {until.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC")
    names = sar_metric_names(session, hostname)
    disks = _devices(names, "disk", "util")
    ifaces = _devices(names, "net", "rxkb_s")
    wanted = [*_FIXED, *(f"sar.disk.{d}.util" for d in disks),
              *(f"sar.net.{i}.{k}" for i in ifaces for k in ("rxkb_s", "txkb_s"))]
    agg = _aggregates(session, hostname, wanted, since, until)
    lines: list[str] = []
    if idle := agg.get("sar.cpu.idle"):
        lines.append(f"cpu busy avg {100 - idle.avg:.1f}% max {100 - idle.min:.1f}% ({window}, {idle.count} samples)")
    for key, label in (("sar.cpu.iowait", "iowait"), ("sar.cpu.steal", "steal")):
        a = agg.get(key)
        # Steal matters only on a VM whose host is overcommitted; silence it otherwise.
        if a and (label == "iowait" or a.max >= 1.0):
            lines.append(f"cpu {label} avg {a.avg:.1f}% max {a.max:.1f}% ({window})")
    if mem := agg.get("sar.mem.used_percent"):
        line = f"memory used avg {mem.avg:.1f}% max {mem.max:.1f}%"
        if (swap := agg.get("sar.swap.used_percent")) and swap.max > 0:
            line += f"; swap used max {swap.max:.1f}%"
        lines.append(f"{line} ({window})")
    if load := agg.get("sar.load.avg1"):
        line = f"load avg1 avg {load.avg:.2f} max {load.max:.2f}"
        if runq := agg.get("sar.load.runq"):
            line += f"; run queue max {runq.max:g}"
        if (blocked := agg.get("sar.load.blocked")) and blocked.max > 0:
            line += f"; blocked on I/O max {blocked.max:g}"
        lines.append(f"{line} ({window})")
    if io := agg.get("sar.io.tps"):
        lines.append(f"io tps avg {io.avg:.1f} max {io.max:.1f} ({window})")
    busy = sorted(((d, agg[f"sar.disk.{d}.util"]) for d in disks if f"sar.disk.{d}.util" in agg),
                  key=lambda x: (x[1].max, x[1].avg), reverse=True)[:top]
    if busy:
        lines.append("disk util " + ", ".join(f"{d} avg {a.avg:.1f}% max {a.max:.1f}%" for d, a in busy)
                     + f" ({window})")
    traffic = []
    for i in ifaces:
        rx, tx = agg.get(f"sar.net.{i}.rxkb_s"), agg.get(f"sar.net.{i}.txkb_s")
        # Idle interfaces (bridges, dummies) would crowd out the busy ones.
        if rx and tx and rx.max + tx.max > 0:
            traffic.append((i, rx, tx))
    traffic.sort(key=lambda x: x[1].avg + x[2].avg, reverse=True)
    if traffic:
        lines.append("network " + ", ".join(
            f"{i} rx avg {rx.avg:.1f} max {rx.max:.1f} kB/s, tx avg {tx.avg:.1f} max {tx.max:.1f} kB/s"
            for i, rx, tx in traffic[:top]) + f" ({window})")
    return lines
