"""sadf's JSON as metric rows: one row per metric and sample, named ``sar.<activity>[.<device>].<field>``.

sysstat renamed and nested fields between versions; each metric is read from the names every version used.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.:@+-]")


@dataclass(frozen=True)
class SarRow:
    time: datetime
    name: str
    value: float
    unit: str
    interval: int | None


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
