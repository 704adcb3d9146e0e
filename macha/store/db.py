"""Engine, sessions and migrations for the store (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from macha.core.errors import StoreError

MIGRATIONS = Path(__file__).with_name("migrations")


def redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"database URL {url!r} is not a valid SQLAlchemy URL") from None
    kwargs: dict[str, Any] = {"future": True, "json_deserializer": _json_reader(url)}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            directory = Path(parsed.database).parent
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"database {redact(url)}: cannot create its directory {directory}: "
                                 f"{exc.strerror or exc}") from None
        # Worker processes write concurrently: wait for the lock instead of failing at once.
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"no driver for database URL {redact(url)}: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _json_reader(url: str) -> Callable[[str | bytes], Any]:
    """json.loads for stored JSON columns. SQLite keeps whatever bytes a damaged file or another writer left, and
    json.loads would fail on them with a bare UnicodeDecodeError or JSONDecodeError naming no database."""

    def load(value: str | bytes) -> Any:
        try:
            return json.loads(value)
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are both ValueErrors
            reason = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else f"not JSON ({exc})"
            raise StoreError(f"database {redact(url)} is damaged: a stored JSON value is {reason}") from None

    return load


def _damaged(exc: SQLAlchemyError) -> bool:
    """The file is not a database or its pages are corrupt (SQLite's bare DatabaseError): no retry will help.
    Constraint and data errors are DatabaseError subclasses too, and stay with their callers."""
    return type(exc) is DatabaseError


def _store_error(url: str, exc: SQLAlchemyError, failed: str) -> StoreError:
    if _damaged(exc):
        return StoreError(f"database {redact(url)} is damaged or not a database: {_first_line(exc)}")
    return StoreError(f"database {redact(url)} {failed}: {_first_line(exc)}")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (Alembic), idempotently."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Workers starting together on a fresh database: one migrates, the others wait and find it done.
                conn.execute(text("SELECT pg_advisory_xact_lock(727368)"))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except DatabaseError as exc:
        if not isinstance(exc, OperationalError) and not _damaged(exc):
            raise
        raise _store_error(str(engine.url), exc, "is unreachable") from None


def _first_line(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__


class Store:
    """The database: one engine and a session factory."""

    def __init__(self, url: str, *, auto_migrate: bool = True):
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if auto_migrate:
            migrate(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed on success, rolled back on any error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except DatabaseError as exc:
            session.rollback()
            if not isinstance(exc, OperationalError) and not _damaged(exc):
                raise
            raise _store_error(self.url, exc, "failed") from None
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def dispose(self) -> None:
        self.engine.dispose()


_stores: dict[str, Store] = {}


def get_store(url: str) -> Store:
    """One Store per URL per process (worker processes reuse their engine across tasks)."""
    store = _stores.get(url)
    if store is None:
        store = _stores[url] = Store(url)
    return store
