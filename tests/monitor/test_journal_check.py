"""Layer 1 minimal: real journal files (systemd-journal-remote) read by real journalctl into the store."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.journal import Entry
from sqlalchemy import func, select, update

from macha.config import load_settings
from macha.core.errors import JournalError
from macha.monitor.checks.journal import run_check
from macha.monitor.collect.journal import JournalSource
from macha.monitor.detect.matcher import Matcher, default_matcher
from macha.store.db import Store
from macha.store.models import JournalCursor, LogEvent, TriggerEvent

OOM = ("Out of memory: Killed process 4242 (postgres) total-vm:8123456kB, anon-rss:7000000kB, file-rss:0kB, "
       "shmem-rss:0kB, UID:71 pgtables:14000kB oom_score_adj:0")
SEGV = "nginx[{pid}]: segfault at 0 ip 00007f00deadbeef sp 00007ffc0 error 4 in libc.so.6[7f00de000000+1a0000]"


def settings(tmp_path: Path, **kw):
    return load_settings(state_dir=tmp_path / "state", hostname="h1", **kw)


def triggers(store: Store) -> list[TriggerEvent]:
    with store.session() as s:
        return list(s.execute(select(TriggerEvent).order_by(TriggerEvent.id)).scalars())


def matched(store: Store) -> int:
    """Journal lines the trigger events stand for: each event is a group of repeats."""
    with store.session() as s:
        return s.execute(select(func.coalesce(func.sum(TriggerEvent.count), 0))).scalar()


def count(store: Store, model) -> int:
    with store.session() as s:
        return s.execute(select(func.count()).select_from(model)).scalar()


def test_oom_and_segfault_become_trigger_events_once(db_url, make_journal, tmp_path) -> None:
    journal = make_journal([
        Entry("eth0: link becomes ready"),
        Entry(OOM, priority=3),
        Entry("Started Session 3 of User bob.", identifier="systemd", transport="journal"),
        Entry(SEGV.format(pid=1234), priority=6),
    ])
    store = Store(db_url)
    first = run_check(store, settings(tmp_path), source=JournalSource.file(journal))
    assert first.entries_read == 4
    got = {(t.pattern_id, t.severity) for t in triggers(store)}
    assert got == {("oom_kill", "critical"), ("segfault", "high")}
    assert first.severity_counts == {"critical": 1, "high": 1}
    with store.session() as s:
        oom = s.execute(select(LogEvent).where(LogEvent.message == OOM)).scalar_one()
        assert oom.meta["boot_id"] == "0123456789abcdef0123456789abcdef" and oom.meta["priority"] == 3

    again = run_check(store, settings(tmp_path), source=JournalSource.file(journal))
    assert (again.entries_read, again.new_triggers) == (0, 0)
    assert len(triggers(store)) == 2
    store.dispose()


def test_ten_thousand_entries_lose_none(db_url, make_journal, tmp_path) -> None:
    entries = [
        Entry(SEGV.format(pid=i) if i % 10 == 0 else f"routine message {i}", priority=6) for i in range(10_000)
    ]
    journal = make_journal(entries)
    store = Store(db_url)
    result = run_check(store, settings(tmp_path, journal_batch_size=700), source=JournalSource.file(journal))
    assert result.entries_read == 10_000
    # The 1,000 segfaults are one event group (same pattern, unit and masked message) counting all of them, and
    # every one of them is stored as a log event.
    assert (result.new_triggers, result.repeats) == (1, 999)
    with store.session() as s:
        (group,) = s.execute(select(TriggerEvent)).scalars().all()
        assert group.count == 1_000 and group.last_seen > group.time
        assert s.execute(select(func.count()).select_from(LogEvent).where(LogEvent.message.like("nginx[%"))
                         ).scalar() == 1_000
        cursor = s.execute(select(JournalCursor)).scalar_one()
        assert cursor.entries_read == 10_000
        assert s.execute(select(LogEvent).where(LogEvent.message == SEGV.format(pid=9990))).scalar_one()
    # Without grouping, each is its own event.
    apart = run_check(store, settings(tmp_path, journal_batch_size=700, grouping={"window": 0}), hostname="h2",
                      source=JournalSource.file(journal))
    assert apart.new_triggers == 1_000 and apart.repeats == 0
    store.dispose()


class CrashingMatcher(Matcher):
    """The process dies while storing: an exception from inside the batch loop after some batches committed."""

    def __init__(self, crash_on: str):
        super().__init__(default_matcher().patterns)
        self.crash_on = crash_on

    def match_many(self, messages: list[str]):
        if self.crash_on in messages:
            raise KeyboardInterrupt("simulated crash")
        return super().match_many(messages)


def test_a_crash_mid_read_rereads_and_stores_nothing_twice(db_url, make_journal, tmp_path) -> None:
    entries = [Entry(SEGV.format(pid=i), priority=6) for i in range(2_500)]
    journal = make_journal(entries)
    store = Store(db_url)
    cfg = settings(tmp_path, journal_batch_size=300)
    with pytest.raises(KeyboardInterrupt):
        run_check(store, cfg, source=JournalSource.file(journal), matcher=CrashingMatcher(SEGV.format(pid=1000)))
    # Three whole batches (their group counts too); the fourth died with the process.
    assert matched(store) == 900
    with store.session() as s:
        assert s.execute(select(JournalCursor.entries_read)).scalar() == 900

    result = run_check(store, cfg, source=JournalSource.file(journal))
    assert result.entries_read == 1_600
    assert matched(store) == count(store, LogEvent) == 2_500
    store.dispose()


def test_replayed_entries_hit_the_unique_key(sqlite_url, make_journal, tmp_path) -> None:
    """Even a cursor that went backwards (restored backup) stores no duplicate."""
    journal = make_journal([Entry(SEGV.format(pid=i)) for i in range(50)])
    store = Store(sqlite_url)
    run_check(store, settings(tmp_path), source=JournalSource.file(journal))
    with store.session() as s:
        s.execute(update(JournalCursor).values(cursor="s=0;i=0;b=0;m=0;t=0;x=0"))  # unknown: journalctl rejects it
    result = run_check(store, settings(tmp_path), source=JournalSource.file(journal))
    assert result.notes and "re-reading" in result.notes[0]
    assert result.entries_read == 50 and result.new_triggers == 0 and result.repeats == 0
    assert matched(store) == 50


def test_long_and_binary_messages_are_kept(sqlite_url, make_journal, tmp_path) -> None:
    long_msg = "I/O error, dev sda, sector 1 " + "x" * 6000
    journal = make_journal([
        Entry(long_msg, priority=3),
        Entry(b"blk_update_request: I/O error, dev sdb, sector 9 \xff\xfe", priority=3),
    ])
    store = Store(sqlite_url)
    run_check(store, settings(tmp_path), source=JournalSource.file(journal))
    with store.session() as s:
        messages = sorted(s.execute(select(LogEvent.message)).scalars(), key=len)
    assert messages[0].startswith("blk_update_request: I/O error, dev sdb") and "\ufffd" in messages[0]
    assert messages[1] == long_msg  # over journalctl's 4,096-byte default: not null, not cut
    assert {t.pattern_id for t in triggers(store)} == {"io_error"}


def test_bad_journal_paths_are_clear_errors(sqlite_url, tmp_path) -> None:
    store = Store(sqlite_url)
    with pytest.raises(JournalError, match="does not exist"):
        run_check(store, settings(tmp_path), source=JournalSource.file(tmp_path / "missing.journal"))
    bad = tmp_path / "not-a-journal.log"
    bad.write_text("hello")
    with pytest.raises(JournalError, match=r"must end in \.journal"):
        run_check(store, settings(tmp_path), source=JournalSource.file(bad))
    corrupt = tmp_path / "corrupt.journal"
    corrupt.write_bytes(b"\0" * 4096)
    with pytest.raises(JournalError, match=r"journalctl failed on the file:.*corrupt.journal journal: .*Bad message"):
        run_check(store, settings(tmp_path), source=JournalSource.file(corrupt))


def test_messages_are_cut_at_the_configured_size_with_a_marker(sqlite_url, make_journal, tmp_path) -> None:
    journal = make_journal([Entry("I/O error, dev sda, sector 1 " + "y" * 5000, priority=3)])
    store = Store(sqlite_url)
    run_check(store, settings(tmp_path, journal_max_message=1000), source=JournalSource.file(journal))
    with store.session() as s:
        message = s.execute(select(LogEvent.message)).scalar_one()
    assert message.startswith("I/O error, dev sda") and message.endswith(" …[truncated 4029 characters]")
    assert len(message) == 1000 + len(" …[truncated 4029 characters]")


def test_rotation_and_a_vacuumed_cursor(sqlite_url, make_journal, tmp_path) -> None:
    """journald renames the active file at rotation and starts a new one; later, vacuuming deletes old files."""
    directory = tmp_path / "journal"
    directory.mkdir()
    first = make_journal([Entry(SEGV.format(pid=i)) for i in range(100)], name="system.journal")
    first.rename(directory / "system.journal")
    store, cfg = Store(sqlite_url), settings(tmp_path)
    source = JournalSource.directory(directory)
    assert run_check(store, cfg, source=source).entries_read == 100

    # Rotation: the file is archived under a new name, a new active file carries on.
    (directory / "system.journal").rename(directory / "system@0001-0000000000000001-0000000000000001.journal")
    # Later in the same boot: realtime and monotonic clocks both move on.
    newer = make_journal([Entry(SEGV.format(pid=1000 + i)) for i in range(50)], name="new.journal",
                         offsets_usec=[10_000_000 + i * 1000 for i in range(50)])
    newer.rename(directory / "system.journal")
    result = run_check(store, cfg, source=source)
    assert (result.entries_read, result.new_log_events, result.notes) == (50, 50, [])

    # Vacuum: the archived file (and the entry the cursor names) is gone; more entries arrive in a new file.
    (directory / "system@0001-0000000000000001-0000000000000001.journal").unlink()
    (directory / "system.journal").rename(directory / "system@0002-0000000000000002-0000000000000002.journal")
    latest = make_journal([Entry(SEGV.format(pid=2000 + i)) for i in range(30)], name="latest.journal",
                          offsets_usec=[20_000_000 + i * 1000 for i in range(30)])
    latest.rename(directory / "system.journal")
    result = run_check(store, cfg, source=source)
    assert result.new_log_events == 30  # nothing lost; what is read again is skipped by its entry key
    assert count(store, LogEvent) == 180


def test_a_burst_of_fifty_thousand_error_lines_is_stored_whole(sqlite_url, make_journal, tmp_path) -> None:
    # The seed read 100 lines per poll and lost the rest of a burst; here every line of the burst is kept.
    journal = make_journal([Entry(f"worker {i}: request failed", priority=3, identifier="app")
                            for i in range(50_000)], name="burst.journal")
    store = Store(sqlite_url)
    result = run_check(store, settings(tmp_path), source=JournalSource.file(journal))
    assert result.entries_read == 50_000 and result.new_log_events == count(store, LogEvent) == 50_000
    with store.session() as s:
        assert s.execute(select(LogEvent).where(LogEvent.message == "worker 49999: request failed")).scalar_one()
        # No pattern knows these lines, but the unit's error rate jumped from nothing: one event says so.
        spike = s.execute(select(TriggerEvent).where(TriggerEvent.trigger_type == "error_rate")).scalar_one()
        assert spike.meta["unit"] == "app" and "app logged 50000 error-priority lines" in spike.trigger_reason
    assert run_check(store, settings(tmp_path), source=JournalSource.file(journal)).entries_read == 0
    store.dispose()
