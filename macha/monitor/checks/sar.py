"""The import-sar check: sysstat's daily files (written by sadc) into system_metrics, through ``sadf -j``.
(macha.core.calendar turns ``sarCollectFrequency`` into a crontab.)

sadc keeps sampling while Macha is down or busy, so these files fill the gaps between Macha's own samples and
reach back before Macha was installed. Importing is idempotent: rows are keyed by (hostname, metric_name, time)
and inserted with insert-or-ignore, so the same file can be read on every run.

Nothing here raises because sysstat is missing, a file is corrupt or was written by another sysstat version:
each becomes a one-line note in the SarImport report and the other files are still imported.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, Field

from macha.monitor.collect.sar.files import daily_files, find_directory
from macha.monitor.collect.sar.parse import SarRow, parse_sadf
from macha.monitor.collect.sar.sadf import read_sadf
from macha.store.db import Store
from macha.store.models import Host, SystemMetric
from macha.store.ops import insert_ignore, upsert

#: Rows per INSERT: a day of 10-minute samples is a few thousand rows.
BATCH = 1000


class SarImport(BaseModel):
    hostname: str
    files: list[str] = Field(default_factory=list)
    samples: int = 0
    rows: int = 0
    inserted: int = 0
    notes: list[str] = Field(default_factory=list)


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
