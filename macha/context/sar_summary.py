"""Short lines on a host's imported SAR series for the review's context window (the ``sar`` section): CPU,
memory, load, the busiest disks and interfaces, from SQL aggregates over system_metrics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from macha.store.models import SystemMetric

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
