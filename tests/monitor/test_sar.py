"""SAR import: real sadc files read through the real sadf into SQLite and PostgreSQL, idempotently; missing
sysstat, garbage and truncated files as notes; sysstat's version differences."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from helpers.servers import REQUIRE
from macha.context.sar_summary import sar_summary
from macha.monitor.checks.sar import import_sar
from macha.monitor.collect.sar.parse import parse_sadf, sample_time
from macha.store.db import Store
from macha.store.models import Host, SystemMetric

SADC_PATHS = ("/usr/lib/sysstat/sadc", "/usr/lib64/sa/sadc", "/usr/libexec/sysstat/sadc", "/usr/lib/sa/sadc")


def _sadc() -> str | None:
    found = shutil.which("sadc")
    return found or next((p for p in SADC_PATHS if os.access(p, os.X_OK)), None)


@pytest.fixture(scope="module")
def sar_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real daily file: three sadc records a second apart (two samples), with disk statistics."""
    sadc = _sadc()
    if sadc is None or shutil.which("sadf") is None:
        if REQUIRE:
            pytest.fail("sysstat (sadc, sadf) is not installed and MACHA_TEST_REQUIRE_SERVICES=1")
        pytest.skip("sysstat (sadc, sadf) is not installed")
    path = tmp_path_factory.mktemp("sar") / "sa01"
    subprocess.run([sadc, "-S", "DISK", "1", "3", str(path)], check=True, timeout=30)
    return path


def _sadf_times(path: Path) -> set[datetime]:
    """The sample times as sadf itself prints them (UTC by default)."""
    out = subprocess.run(["sadf", "-j", str(path), "--", "-u"], capture_output=True, text=True, check=True).stdout
    stats = json.loads(out)["sysstat"]["hosts"][0]["statistics"]
    return {datetime.strptime(f"{s['timestamp']['date']} {s['timestamp']['time']}", "%Y-%m-%d %H:%M:%S")
            .replace(tzinfo=timezone.utc) for s in stats}


def _rows(store: Store, hostname: str) -> list[SystemMetric]:
    with store.session() as s:
        return list(s.execute(select(SystemMetric).where(SystemMetric.hostname == hostname)).scalars())


def test_a_real_sadc_file_is_imported_once_with_plausible_values(db_url: str, sar_file: Path) -> None:
    store = Store(db_url)
    report = import_sar(store, "sar1", None, files=[sar_file])
    assert report.notes == [] and report.files == [str(sar_file)]
    assert report.samples == 2 and report.inserted == report.rows > 0

    rows = _rows(store, "sar1")
    assert len(rows) == report.inserted
    by_name: dict[str, list[SystemMetric]] = {}
    for r in rows:
        by_name.setdefault(r.metric_name, []).append(r)
    for name in ("sar.cpu.user", "sar.cpu.system", "sar.cpu.iowait", "sar.cpu.idle", "sar.mem.used_percent",
                 "sar.load.avg1", "sar.load.avg15", "sar.load.runq", "sar.io.tps"):
        assert len(by_name.get(name, [])) == 2, name
    for r in rows:
        if r.unit == "%":
            assert 0 <= r.value <= 100, (r.metric_name, r.value)
        assert r.value >= 0, (r.metric_name, r.value)
    for t in {r.time for r in rows}:
        cpu = sum(r.value for r in rows if r.time == t and r.metric_name.startswith("sar.cpu."))
        assert 98 <= cpu <= 102  # user+nice+system+iowait+steal+idle
    assert 0 < by_name["sar.mem.avail_kb"][0].value
    assert by_name["sar.cpu.idle"][0].unit == "%" and by_name["sar.load.avg1"][0].unit == "load"
    assert not any(n.startswith("sar.net.lo.") for n in by_name)
    assert any(n.startswith("sar.disk.") and n.endswith(".util") for n in by_name)

    # The stored times are sadf's own (UTC), as aware datetimes, on both backends.
    times = {r.time for r in by_name["sar.cpu.idle"]}
    assert times == _sadf_times(sar_file)
    assert all(t.tzinfo is not None and t.utcoffset() == timedelta(0) for t in times)
    with store.session() as s:
        assert s.execute(select(Host.hostname).where(Host.hostname == "sar1")).scalar() == "sar1"

    again = import_sar(store, "sar1", None, files=[sar_file])
    assert again.inserted == 0 and again.rows == report.rows and again.notes == []
    assert len(_rows(store, "sar1")) == len(rows)
    store.dispose()


def test_summary_lines_from_sql_aggregates(db_url: str, sar_file: Path) -> None:
    store = Store(db_url)
    import_sar(store, "sar2", None, files=[sar_file])
    times = sorted(_sadf_times(sar_file))
    until = times[-1] + timedelta(seconds=1)
    with store.session() as s:
        lines = sar_summary(s, "sar2", until - timedelta(hours=1), until, now=until)
        assert sar_summary(s, "nobody", until - timedelta(hours=1), until) == []
        # A window before the samples has none of them.
        assert sar_summary(s, "sar2", times[0] - timedelta(hours=2), times[0] - timedelta(hours=1)) == []
    text = "\n".join(lines)
    assert lines[0].startswith("cpu busy avg ") and "(last 1h, 2 samples)" in lines[0]
    for part in ("cpu iowait avg ", "memory used avg ", "load avg1 avg ", "disk util "):
        assert part in text, (part, lines)
    store.dispose()


def test_a_garbage_file_is_a_note_and_the_others_are_still_imported(tmp_path: Path, sar_file: Path) -> None:
    garbage = tmp_path / "sa02"
    garbage.write_bytes(b"this is not a system activity file\n" * 10)
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    report = import_sar(store, "sar3", None, files=[garbage, sar_file, tmp_path / "sa03"])
    assert report.files == [str(sar_file)] and report.inserted > 0
    assert len(report.notes) == 2
    assert report.notes[0].startswith(f"{garbage}: Invalid system activity file")
    assert "another sysstat version" in report.notes[0] and "\n" not in report.notes[0]
    assert report.notes[1].startswith(f"{tmp_path / 'sa03'}: ") and "No such file" in report.notes[1]
    store.dispose()


def test_a_file_cut_mid_record_keeps_its_complete_samples(tmp_path: Path, sar_file: Path) -> None:
    cut = tmp_path / "sa04"
    cut.write_bytes(sar_file.read_bytes()[:-100])  # as when sadc is writing its next record
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    report = import_sar(store, "sar4", None, files=[cut])
    assert report.samples == 1 and report.inserted > 0
    assert report.notes == [f"{cut}: ends in a partial record (still being written, or truncated); "
                            "the complete samples were read"]
    store.dispose()


def test_without_sadf_on_path_the_report_says_so(tmp_path: Path, sar_file: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    monkeypatch.setenv("PATH", str(tmp_path))
    report = import_sar(store, "sar5", None, files=[sar_file])
    assert report.inserted == 0 and report.files == []
    assert report.notes == ["sadf was not found on PATH: install sysstat to import SAR data "
                            "(NixOS: services.sysstat.enable = true; Debian: apt-get install sysstat)"]
    store.dispose()


def test_daily_files_are_found_by_local_date_and_stale_ones_skipped(tmp_path: Path, sar_file: Path) -> None:
    now = datetime.now(timezone.utc)
    today = now.astimezone().date()
    yesterday = today - timedelta(days=1)
    sa_dir = tmp_path / "sysstat"
    sa_dir.mkdir()
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")

    assert import_sar(store, "sar6", str(tmp_path / "absent")).notes == [
        f"SAR directory {tmp_path / 'absent'} (sarDirectory) does not exist or is not a directory"]
    assert import_sar(store, "sar6", str(sa_dir)).notes == [
        f"no SAR files for {yesterday} or {today} in {sa_dir} (saDD or saYYYYMMDD)"]

    shutil.copy(sar_file, sa_dir / f"sa{today:%d}")
    shutil.copy(sar_file, sa_dir / f"sa{yesterday:%Y%m%d}")
    (sa_dir / f"sar{today:%d}").write_text("sa2's text report, not a data file\n")
    report = import_sar(store, "sar6", str(sa_dir), now=now)
    assert report.files == [str(sa_dir / f"sa{yesterday:%Y%m%d}"), str(sa_dir / f"sa{today:%d}")]
    assert report.notes == [] and report.inserted == report.rows // 2  # the same samples twice

    # sadc reuses saDD every month: last month's file is not today's.
    stale = sa_dir / f"sa{today:%d}"
    old = (now - timedelta(days=28)).timestamp()
    os.utime(stale, (old, old))
    report = import_sar(store, "sar6", str(sa_dir), now=now)
    assert report.files == [str(sa_dir / f"sa{yesterday:%Y%m%d}")]
    assert len(report.notes) == 1 and "an earlier month's file, skipped" in report.notes[0]
    store.dispose()


def test_sysstat_version_differences_are_parsed() -> None:
    # Shapes of other versions: sysstat >= 12.7 marks UTC with "tz", older ones name usr/sys "user"/"system",
    # lack rkB/wkB and memused-percent, and print NaN for a wrapped counter (read as null here).
    doc = {"sysstat": {"hosts": [{"nodename": "old", "statistics": [
        {"timestamp": {"date": "2024-03-01", "time": "10:00:00", "tz": "UTC", "interval": 600},
         "cpu-load": [{"cpu": "all", "usr": 10.0, "nice": 0.0, "sys": 5.0, "iowait": 2.5, "steal": 0.0,
                       "idle": 82.5}, {"cpu": "0", "usr": 99.0}],
         "memory": {"memfree": 750, "memused": 250, "buffers": 1, "cached": 2},
         "io": {"tps": 4.0, "rtps": 1.0, "wtps": 3.0, "bread": 8.0, "bwrtn": 24.0},
         "disk": [{"disk-device": "dev8-0", "tps": 1.0, "rd_sec": 10.0, "wr_sec": 20.0, "avgqu-sz": 0.5,
                   "await": 1.5, "util-percent": 12.0}],
         "network": {"net-dev": [{"iface": "lo", "rxkB": 5.0}, {"iface": "eth0", "rxkB": 1.0, "txkB": None}]}},
        {"timestamp": {"date": "2024-03-01", "time": "11:00:00", "tz": "Europe/Berlin", "interval": 600},
         "queue": {"runq-sz": 1, "plist-sz": 100, "ldavg-1": 0.5, "ldavg-5": 0.4, "ldavg-15": 0.3, "blocked": 0}},
        {"timestamp": {"date": "2024-03-01", "time": "12:00:00", "utc": 0, "interval": 600},
         "queue": {"ldavg-1": 9.0}},
    ]}]}}
    rows, samples, notes = parse_sadf(doc)
    values = {(r.name, r.time.hour): r.value for r in rows}
    assert samples == 2 and notes == ["1 sample(s) without a readable UTC timestamp were skipped"]
    assert values[("sar.cpu.user", 10)] == 10.0 and values[("sar.cpu.system", 10)] == 5.0
    assert ("sar.cpu.0.user", 10) not in values
    assert values[("sar.mem.used_percent", 10)] == 25.0
    assert values[("sar.io.rtps", 10)] == 1.0 and values[("sar.io.bwrtn_s", 10)] == 24.0
    assert values[("sar.disk.dev8-0.rkb_s", 10)] == 5.0 and values[("sar.disk.dev8-0.aqu_sz", 10)] == 0.5
    assert values[("sar.net.eth0.rxkb_s", 10)] == 1.0
    assert ("sar.net.eth0.txkb_s", 10) not in values and ("sar.net.lo.rxkb_s", 10) not in values
    assert values[("sar.load.avg1", 10)] == 0.5  # 11:00 in Berlin (CET) is 10:00 UTC
    assert all(r.interval == 600 for r in rows)
    assert sample_time({"date": "2024-07-01", "time": "00:30:00", "utc": 1}) == datetime(2024, 7, 1, 0, 30,
                                                                                         tzinfo=timezone.utc)
    assert sample_time({"date": "garbage", "time": "x", "utc": 1}) is None
    assert parse_sadf({"nope": 1}) == ([], 0, ["sadf output has no sysstat.hosts list"])
