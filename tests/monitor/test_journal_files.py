"""The test helper's journal files agree with each other as a real host's do (issue 14, defect 14): several files
in one directory, read through the real reader and journalctl's `--after-cursor`, lose no entry."""

from __future__ import annotations

from helpers.journal import Entry
from helpers.journal import BASE_USEC
from sqlalchemy import select

from macha.config import load_settings
from macha.monitor.checks.journal import run_check
from macha.monitor.collect.journal import JournalSource, read_batches
from macha.store.db import Store
from macha.store.models import LogEvent

MINUTE = 60_000_000


def test_a_second_file_written_later_is_read_whole_after_the_first_files_cursor(sqlite_url, make_journal,
                                                                                 tmp_path) -> None:
    directory = tmp_path / "journal"
    directory.mkdir()
    make_journal([Entry(f"first file: disk error {i}", priority=3) for i in range(5)], name="journal/a.journal")
    source = JournalSource.directory(directory)
    store = Store(sqlite_url)
    settings = load_settings(state_dir=tmp_path / "state", hostname="h1")
    assert run_check(store, settings, source=source).entries_read == 5
    cursor = [e.cursor for batch in read_batches(source) for e in batch][-1]

    # Written after the first, its entries a minute later: journald's next file in the same boot.
    second = [f"second file: disk error {i}" for i in range(5)]
    make_journal([Entry(m, priority=3) for m in second], name="journal/b.journal", start_usec=BASE_USEC + MINUTE)
    after = [e.message for batch in read_batches(source, after_cursor=cursor) for e in batch]
    assert after == second
    result = run_check(store, settings, source=source)
    assert (result.entries_read, result.new_log_events) == (5, 5)
    with store.session() as s:
        stored = set(s.execute(select(LogEvent.message)).scalars())
    assert set(second) <= stored and len(stored) == 10
    store.dispose()
