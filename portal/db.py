"""Declarative base, column types and engine/session factories."""

from __future__ import annotations

import datetime as dt
import enum
import functools
import json
import logging
import os
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Engine,
    Enum,
    Integer,
    MetaData,
    String,
    Table,
    any_,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import Insert as PostgresqlInsert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from portal import pool_checks, sqlite_async
from portal.sqlite_writers import WriterTurns

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY, so big ids map to INTEGER there.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _in_memory_sqlite(url: str) -> bool:
    return ":memory:" in url or url in ("sqlite://", "sqlite:///")


# Seconds a SQLite statement waits for another connection's write lock before failing.
SQLITE_BUSY_SECONDS = 30


def _set_sqlite_pragmas(dbapi_connection: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # 64 MiB of page cache (the default is 2 MiB) and temporary sorts in memory: a
    # reminder run over hundreds of thousands of invoices stays linear.
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


# An execution option for a transaction that only reads: on SQLite it begins without taking
# the write lock (a consistent snapshot under WAL; writers go on meanwhile). A write in it
# would fail with "database is locked" when another writer committed since it began.
READ_ONLY = "relance_read_only"


def make_engine(url: str, *, autocommit: bool = False, **kwargs: Any) -> Engine:
    """An engine tuned for the backend: SQLite gets WAL, foreign keys and a busy timeout.

    ``autocommit`` opens every connection in autocommit mode (see make_read_engine).
    """
    if autocommit:
        kwargs["isolation_level"] = "AUTOCOMMIT"
    if url.startswith("sqlite"):
        connect_args = {"check_same_thread": False, "timeout": SQLITE_BUSY_SECONDS}
        if _in_memory_sqlite(url):
            kwargs.setdefault("poolclass", StaticPool)
        engine = create_engine(url, connect_args=connect_args, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy issue BEGIN itself so SAVEPOINTs and rollbacks behave.
            dbapi_connection.isolation_level = None
            _set_sqlite_pragmas(dbapi_connection)

        if autocommit:
            return engine
        turns = _writer_turns(engine)

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # IMMEDIATE takes the write lock up front: a transaction that reads and then
            # writes (a payment locking its invoices) waits its turn instead of failing
            # with "database is locked" when another writer committed in between.
            # Page views run in autocommit and never take it; a transaction that only
            # reads may ask for a plain BEGIN (READ_ONLY): one snapshot, no lock.
            options = conn.get_execution_options()
            if options.get("isolation_level") == "AUTOCOMMIT":
                return
            if options.get(READ_ONLY):
                conn.exec_driver_sql("BEGIN")
                return
            if turns is not None:
                turns.take(conn.connection.dbapi_connection)
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        # Stale connections are still caught, without a round trip on every checkout.
        pool_checks.install(engine)
    return engine


def _writer_turns(engine: Engine) -> WriterTurns | None:
    """Writers of a SQLite file take turns (portal.sqlite_writers); the turn goes back once
    the transaction has ended, whichever way it ends."""
    path = engine.url.database
    if not path or _in_memory_sqlite(str(engine.url)):
        return None
    turns = WriterTurns(os.path.abspath(path), SQLITE_BUSY_SECONDS)
    dialect = engine.dialect
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_connection: Any) -> None:
        try:
            commit(dbapi_connection)
        finally:
            turns.give_back(dbapi_connection)

    def do_rollback(dbapi_connection: Any) -> None:
        try:
            rollback(dbapi_connection)
        finally:
            turns.give_back(dbapi_connection)

    dialect.do_commit = do_commit  # type: ignore[method-assign]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign]

    @event.listens_for(engine, "close")
    def _closed(dbapi_connection: Any, _record: Any) -> None:
        turns.give_back(dbapi_connection)

    @event.listens_for(engine, "invalidate")
    def _invalidated(dbapi_connection: Any, _record: Any, _exception: Any) -> None:
        turns.give_back(dbapi_connection)

    return turns


def make_session_factory(bind: Any, **kwargs: Any) -> sessionmaker[Session]:
    return sessionmaker(bind=bind, expire_on_commit=False, **kwargs)


def make_read_engine(engine: Engine) -> Engine:
    """An engine for page views: each statement commits on its own (no BEGIN/COMMIT round
    trips). Only for reads that tolerate statements seeing different snapshots, and for
    single-statement writes such as touching a session's last-seen time.

    SQLite gets a pool of its own, opened in autocommit: switching a pooled connection
    into autocommit and back costs a PRAGMA each way on every page view. PostgreSQL's
    driver switches without a round trip, so it shares the engine's pool. The caller
    disposes of the returned engine (a no-op when the pool is shared).
    """
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name == "sqlite" and not _in_memory_sqlite(url):
        return make_engine(url, autocommit=True)
    return engine.execution_options(isolation_level="AUTOCOMMIT")


ASYNC_POOL_SIZE = 10


def make_async_read_engine(engine: Engine) -> AsyncEngine | None:
    """An asyncio engine in autocommit for the page views served on the event loop
    (web.rendering.page_view): waiting on the database there leaves the worker free for
    other requests, and the page renders on the loop rather than in a thread that fights
    the loop for the GIL. PostgreSQL goes through psycopg's async mode; a SQLite file
    through aiosqlite (each connection's statements run in its own thread, which releases
    the GIL while SQLite works). None for an in-memory SQLite database, which another
    connection could not see: its page views run in the thread pool.
    """
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name == "sqlite":
        return None if _in_memory_sqlite(url) else _async_sqlite_engine(engine.url)
    if engine.dialect.name != "postgresql":
        return None
    # No overflow: every page view of a busy worker would otherwise open a connection and
    # close it again (a new server process each time); beyond ten they wait their turn.
    async_engine = create_async_engine(
        url,
        isolation_level="AUTOCOMMIT",
        # Nothing to roll back in autocommit: spare the round trip when a connection returns.
        skip_autocommit_rollback=True,
        pool_size=ASYNC_POOL_SIZE,
        max_overflow=0,
    )
    pool_checks.install(async_engine.sync_engine)
    return async_engine


def _async_sqlite_engine(url: URL) -> AsyncEngine:
    async_url = url.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    # Autocommit, as make_read_engine's SQLite pool: no BEGIN, each statement commits, and no
    # COMMIT or ROLLBACK either, each of which would be one more trip to the connection's thread.
    async_engine = create_async_engine(
        async_url,
        async_creator=sqlite_async.connector(url.database or "", SQLITE_BUSY_SECONDS),
        isolation_level="AUTOCOMMIT",
        skip_autocommit_rollback=True,
        # As on PostgreSQL, no overflow: a busy worker would otherwise open a connection (and
        # its thread, and its PRAGMAs) for a page view and close it again; beyond ten, page
        # views wait their turn on the loop.
        pool_size=ASYNC_POOL_SIZE,
        max_overflow=0,
    )

    @event.listens_for(async_engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        _set_sqlite_pragmas(dbapi_connection)

    return async_engine


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error."""
    with factory() as session, session.begin():
        yield session


_ON_ROLLBACK = "relance_on_rollback"


def on_rollback(session: Session, undo: Callable[[], None]) -> None:
    """Run ``undo`` if the session's transaction rolls back; forget it once it commits.

    For what a transaction does outside the database, such as writing a file the rows
    being inserted refer to: a failed request leaves no file behind.
    """
    session.info.setdefault(_ON_ROLLBACK, []).append(undo)


@event.listens_for(Session, "after_commit")
def _forget_undo(session: Session) -> None:
    session.info.pop(_ON_ROLLBACK, None)


@event.listens_for(Session, "after_rollback")
def _run_undo(session: Session) -> None:
    for undo in reversed(session.info.pop(_ON_ROLLBACK, [])):
        try:
            undo()
        except Exception:  # one failed clean-up must not hide the others, nor the rollback
            log.exception("could not undo a side effect of a rolled back transaction")


def conflict_insert(backend: str | Session, table: Table) -> PostgresqlInsert | SqliteInsert:
    """An INSERT that takes ``ON CONFLICT DO NOTHING``: PostgreSQL's or SQLite's.

    ``backend`` is a dialect name, or the session the statement will run in.
    """
    dialect_name = backend if isinstance(backend, str) else backend.get_bind().dialect.name
    if dialect_name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def enum_column(enum_class: type[enum.StrEnum], length: int = 16) -> Enum:
    """A string enum stored as its values, with a CHECK constraint (portable, readable)."""
    return Enum(
        enum_class,
        native_enum=False,
        length=length,
        create_constraint=True,
        values_callable=lambda members: [member.value for member in members],
    )


def insert_many(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]], *, binary: bool = False
) -> list[int]:
    """Insert ``rows`` (dicts with the same keys, no ``id``) into ``table`` and return their
    new ids, in order: the fast path for imports.

    PostgreSQL: ids drawn from the table's sequence in one query, rows sent with COPY.
    SQLite: ids from ``max(id) + 1`` (the transaction holds the database's write lock, see
    make_engine) and one executemany. ``binary``: see ``_copy``.
    """
    if not rows:
        return []
    ids = draw_ids(session, table, len(rows))
    insert_with_ids(session, table, ids, rows, binary=binary)
    return ids


def insert_rows(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]], *, binary: bool = False
) -> None:
    """``insert_many`` for rows whose ids nobody reads back: each row takes the next id
    as it is written (on PostgreSQL in the COPY itself, no query to draw them first), in
    order, so the ids are those ``insert_many`` would have given."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        copy_rows(driver_connection(connection), table, rows, binary=binary)
        return
    connection.execute(insert(table), list(rows))


def draw_ids(session: Session, table: Table, count: int) -> list[int]:
    """``count`` new ids of ``table``, for rows written later in this transaction by
    ``insert_with_ids`` (PostgreSQL: from the table's sequence; SQLite: after ``max(id)``,
    so draw once per table before writing its rows)."""
    if count <= 0:
        return []
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        return [
            int(value)
            for value in connection.exec_driver_sql(
                f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) "  # noqa: S608
                f"FROM generate_series(1, {count})"
            )
            .scalars()
            .all()
        ]
    start = int(connection.execute(select(func.max(table.c.id))).scalar() or 0) + 1
    return list(range(start, start + count))


def insert_with_ids(
    session: Session,
    table: Table,
    ids: Sequence[int],
    rows: Sequence[Mapping[str, Any]],
    *,
    binary: bool = False,
) -> None:
    """Insert ``rows`` (dicts with the same keys, no ``id``) with the ids ``ids`` drawn by
    ``draw_ids``: COPY on PostgreSQL, one executemany on SQLite."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        copy_rows(driver_connection(connection), table, rows, ids=ids, binary=binary)
        return
    connection.execute(insert(table), [{"id": i, **row} for i, row in zip(ids, rows, strict=True)])


def driver_connection(connection: Any) -> Any:
    """The DBAPI (psycopg) connection under a SQLAlchemy ``connection``."""
    raw = connection.connection.driver_connection
    assert raw is not None
    return raw


def copy_rows(
    raw: Any,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    ids: Sequence[int] | None = None,
    binary: bool = False,
) -> None:
    """COPY ``rows`` (dicts with the same keys) into ``table`` on the psycopg connection
    ``raw``: with ``ids`` (drawn by ``draw_ids``), or each row taking the next id.

    ``binary``: in PostgreSQL's binary format, when every column's type is one of
    ``_BINARY`` (the caller sends values of exactly those Python types: int, str, bool,
    date, aware datetime, JSON): about half the Python time of the text format, and the
    server does not parse numbers and dates from text.
    """
    if not rows:
        return
    columns = list(rows[0])
    with_id = ids is not None
    records = zip(ids, rows, strict=True) if ids is not None else ((row,) for row in rows)
    types = _binary_types(table, (["id"] if with_id else []) + columns) if binary else None
    # Only JSON and enum values need converting: the others go to COPY as they are.
    first = 1 if with_id else 0
    converted = [
        (index, converter)
        for index, name in enumerate(columns, start=first)
        if (converter := _copy_converter(table.c[name].type, binary=types is not None))
        is not _as_is
    ]
    values = itemgetter(*columns)
    names = ", ".join(f'"{name}"' for name in (("id",) if with_id else ()) + tuple(columns))
    with (
        raw.cursor() as cursor,
        cursor.copy(
            f'COPY "{table.name}" ({names}) FROM STDIN'
            + (" (FORMAT BINARY)" if types is not None else "")
        ) as copy,
    ):
        if types is not None:
            copy.set_types(types)
        for record in records:
            row = record[-1]
            picked = values(row) if len(columns) > 1 else (values(row),)
            fields = [record[0], *picked] if with_id else [*picked]
            for index, convert in converted:
                fields[index] = convert(fields[index])
            copy.write_row(fields)


_BINARY: tuple[tuple[type[Any], str], ...] = (
    (BigInteger, "int8"),
    (Integer, "int4"),
    (Boolean, "bool"),
    (DateTime, "timestamptz"),
    (Date, "date"),
    (JSON, "text"),  # sent as its text (see _copy_converter): json's binary form is that
    (String, "text"),  # Text, VARCHAR, and the enums stored as their values
)


def _binary_types(table: Table, columns: Sequence[str]) -> list[str] | None:
    """The PostgreSQL types to send ``columns`` of ``table`` as, in binary COPY; None if one
    is not a type ``_BINARY`` knows (the text format then)."""
    out = []
    for name in columns:
        column_type = table.c[name].type
        if isinstance(column_type, TypeDecorator):
            column_type = column_type.impl_instance
        if isinstance(column_type, Enum) and column_type.native_enum:
            return None
        if isinstance(column_type, DateTime) and not column_type.timezone:
            return None
        found = next((pg for kind, pg in _BINARY if isinstance(column_type, kind)), None)
        if found is None:
            return None
        out.append(found)
    return out


def update_many(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Set the columns of ``rows`` (dicts with the same keys, ``id`` among them) on the rows
    of ``table`` with those ids: the fast path for a statement's thousands of changes.

    PostgreSQL: one UPDATE from arrays (``unnest``). SQLite: one executemany.
    """
    if not rows:
        return
    columns = [name for name in rows[0] if name != "id"]
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        update_from_arrays(driver_connection(connection), table, rows)
        return
    statement = (
        update(table)
        .where(table.c.id == bindparam("changed_id"))
        .values({name: bindparam(name) for name in columns})
    )
    connection.execute(
        statement,
        [{"changed_id": row["id"], **{name: row[name] for name in columns}} for row in rows],
    )


@functools.cache
def _postgresql_dialect() -> Dialect:
    return postgresql.dialect()  # type: ignore[no-untyped-call]


def update_from_arrays(raw: Any, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """``update_many`` on PostgreSQL, on the psycopg connection ``raw``: one UPDATE from
    arrays (``unnest``), one array per column."""
    if not rows:
        return
    names = ["id", *(name for name in rows[0] if name != "id")]
    dialect = _postgresql_dialect()
    types = {name: table.c[name].type.compile(dialect=dialect) for name in names}
    arrays = ", ".join(f"CAST(%({name})s AS {types[name]}[])" for name in names)
    assigned = ", ".join(f'"{name}" = changed."{name}"' for name in names[1:])
    params = {}
    for name in names:
        convert = _copy_converter(table.c[name].type)
        column = [row[name] for row in rows]
        params[name] = column if convert is _as_is else [convert(v) for v in column]
    with raw.cursor() as cursor:
        cursor.execute(
            f'UPDATE "{table.name}" SET {assigned} '  # noqa: S608
            f"FROM unnest({arrays}) AS changed({', '.join(names)}) "
            f'WHERE "{table.name}".id = changed.id',
            params,
        )


def _copy_converter(column_type: Any, *, binary: bool = False) -> Callable[[Any], Any]:
    """COPY sends Python values as PostgreSQL text: JSON as its text, enums as their value.

    ``binary``: a StrEnum member goes as it is (sent as text, a StrEnum's text is its
    value), not converted one by one."""
    if isinstance(column_type, JSON):
        return _json_text
    if isinstance(column_type, Enum):
        if binary and issubclass(column_type.enum_class or str, enum.StrEnum):
            return _as_is
        return lambda value: None if value is None else str(getattr(value, "value", value))
    return _as_is


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    if not value and type(value) in _EMPTY_JSON:  # most lines' suggestions, most details
        return _EMPTY_JSON[type(value)]
    return json.dumps(value)


_EMPTY_JSON: dict[type[Any], str] = {list: "[]", dict: "{}"}


def _as_is(value: Any) -> Any:
    return value


def one_of(session: Session, column: Any, values: Collection[Any]) -> Any:
    """``column IN values`` for thousands of values: on PostgreSQL ``= ANY(array)``, one
    parameter (the driver need not parse a statement with thousands of placeholders)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))


def analyze(session: Session, *tables: str) -> None:
    """Refresh PostgreSQL's statistics of ``tables`` (a no-op on SQLite): after a bulk load
    the planner would otherwise plan for the tables as they were, e.g. scan a whole index
    for ``company_id = 1`` instead of looking references up."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"ANALYZE {', '.join(tables)}"))


def stamp_updates(model: type[Any]) -> None:
    """Keep ``model.updated_at`` on the time of its last change: every UPDATE of one of its
    columns through the ORM sets it (``clock.now()``), so the API's ``updated_since`` and a
    nightly sync see every change, whichever service made it."""
    from sqlalchemy import event
    from sqlalchemy.orm import object_session

    from portal import clock

    @event.listens_for(model, "before_update")
    def _stamp(_mapper: Any, _connection: Any, target: Any) -> None:
        session = object_session(target)
        if session is not None and session.is_modified(target, include_collections=False):
            target.updated_at = clock.now()
