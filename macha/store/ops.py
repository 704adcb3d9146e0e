"""The few statements whose SQL differs between SQLite and PostgreSQL: insert-or-ignore and upsert."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, SessionTransaction


def _insert(session: Session, table: Table) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"database dialect {dialect!r} is not supported (use SQLite or PostgreSQL)")


def insert_ignore(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], returning: Sequence[str]
) -> list[Any]:
    """Insert rows (keyed by column name), skipping those that violate a unique key; return inserted columns."""
    if not rows:
        return []
    stmt = _insert(session, table).on_conflict_do_nothing().returning(*(table.c[c] for c in returning))
    return list(session.execute(stmt, list(rows)).all())


def upsert(
    session: Session, table: Table, row: dict[str, Any], keys: Sequence[str], update: Sequence[str] | None = None
) -> None:
    """Insert a row, or update the columns ``update`` (default: all but the keys) of the existing one.

    Rows are keyed by column name (``metadata``), not ORM attribute name.
    """
    stmt = _insert(session, table).values(**row)
    cols = update if update is not None else [k for k in row if k not in keys and k != "id"]
    updates = {k: stmt.excluded[k] for k in cols}
    session.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=updates))


def upsert_many(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str], update: Sequence[str]
) -> None:
    """``upsert`` for many rows in one executemany; all rows have the same columns."""
    if not rows:
        return
    stmt = _insert(session, table)
    stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_={k: stmt.excluded[k] for k in update})
    session.execute(stmt, list(rows))


def savepoint(session: Session) -> SessionTransaction:
    """``session.begin_nested()`` that nests on SQLite too.

    Python's sqlite3 driver opens its transaction only at the first write, and a SAVEPOINT before that write is a
    transaction of its own: releasing it would commit what it holds at once, apart from the rest of the session's
    transaction. So the transaction is opened first."""
    if session.get_bind().dialect.name == "sqlite":
        driver = session.connection().connection.driver_connection
        if driver is not None and not driver.in_transaction:
            session.execute(text("BEGIN"))
    return session.begin_nested()
