"""The store on SQLite and PostgreSQL alike: migrations, dedup keys, and events committed with their cursor."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import func, inspect, select

from macha.core.errors import StoreError
from macha.store.db import Store, migrate
from macha.store.models import JournalCursor, LogEvent
from macha.store.ops import insert_ignore, upsert

SEED_TABLES = {"system_metrics", "service_status", "log_events", "trigger_events"}


def test_migrations_create_the_schema_and_are_idempotent(db_url: str) -> None:
    store = Store(db_url)
    migrate(store.engine)  # a second run changes nothing and does not fail
    tables = set(inspect(store.engine).get_table_names())
    assert SEED_TABLES | {"hosts", "journal_cursors", "reviews", "alembic_version"} <= tables
    cols = {c["name"] for c in inspect(store.engine).get_columns("trigger_events")}
    assert {"time", "hostname", "trigger_type", "trigger_reason", "metadata"} <= cols
    store.dispose()


def _row(key: str, message: str = "m") -> dict:
    return {
        "time": datetime(2026, 1, 1, tzinfo=timezone.utc),
        "hostname": "h1",
        "severity": "high",
        "message": message,
        "unit": None,
        "source": "file:/x.journal",
        "entry_key": key,
        "metadata": {"cursor": key},
    }


def test_insert_ignore_skips_duplicates_and_returns_only_new_rows(db_url: str) -> None:
    store = Store(db_url)
    with store.session() as s:
        first = insert_ignore(s, LogEvent.__table__, [_row("a"), _row("b")], returning=("id", "entry_key"))
    with store.session() as s:
        again = insert_ignore(s, LogEvent.__table__, [_row("b", "changed"), _row("c")], returning=("id", "entry_key"))
    assert sorted(k for _, k in first) == ["a", "b"]
    assert [k for _, k in again] == ["c"]
    with store.session() as s:
        assert s.execute(select(func.count()).select_from(LogEvent)).scalar() == 3
        kept = s.execute(select(LogEvent.message).where(LogEvent.entry_key == "b")).scalar()
        assert kept == "m"  # the duplicate did not overwrite the stored entry
        ev = s.execute(select(LogEvent).where(LogEvent.entry_key == "a")).scalar_one()
        assert ev.time.tzinfo is not None and ev.meta == {"cursor": "a"}
    store.dispose()


def test_a_failed_transaction_stores_neither_events_nor_cursor(db_url: str) -> None:
    store = Store(db_url)
    with pytest.raises(RuntimeError):
        with store.session() as s:
            insert_ignore(s, LogEvent.__table__, [_row("x")], returning=("id",))
            upsert(s, JournalCursor.__table__, {"hostname": "h1", "source": "system", "cursor": "c1",
                                                "entries_read": 1, "updated_at": datetime.now(timezone.utc)},
                   keys=["hostname", "source"])
            raise RuntimeError("crash between the writes")
    with store.session() as s:
        assert s.execute(select(func.count()).select_from(LogEvent)).scalar() == 0
        assert s.execute(select(func.count()).select_from(JournalCursor)).scalar() == 0
    store.dispose()


def test_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match=r"postgresql\+psycopg2://macha:\*\*\*@127.0.0.1:1/x is unreachable"):
        Store("postgresql+psycopg2://macha:secret@127.0.0.1:1/x")


def test_unknown_driver_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="no driver"):
        Store("nosuchdb://x/y")
