"""PostgreSQL as the store's Backend: several replicas of the service on one database.

    KIMARI_STORE=postgresql://kimari@db.example/kimari kimari serve

- Connections come from a psycopg_pool pool per process, one for each of a worker's
  threads that may hold one at once (the deciding thread reads, the committer writes a
  group at a time, the reloader, the data and the lifecycle threads). They are not checked before
  each use (that costs a round trip, ~150 us here, on every read); instead the first
  request to meet a broken connection (a database restart) fails with StoreUnavailable,
  and the pool then checks its idle connections in the background, drops the broken
  ones and connects again by itself.
- `synchronous_commit = on` on every connection, whatever the server's default: a
  COMMIT returns once the transaction's WAL is flushed, so an acknowledged decision
  survives a crash of the database.
- The write discipline: `write(*keys)` is one READ COMMITTED transaction that first
  takes a transaction-scoped advisory lock per key (`pg_advisory_xact_lock` of a 64-bit
  hash of the key), in sorted order so two writers never wait for each other in a
  circle. Writers of one entity take turns across every replica; a compare-and-set on
  what they read inside holds until COMMIT. Writes without keys (the decision log's
  groups, data sets) rely on unique constraints instead (ON CONFLICT).
- Migrations run in one transaction under an advisory lock of their own, so replicas
  starting together apply each step once.
- Read-only (`readonly=True`, the CLI's queries): every session is read-only
  (`default_transaction_read_only`), and components check the versions in
  `schema_versions` instead of migrating (engine/store/backend.py `require`); a component
  the database does not hold yet is store_outdated.
- Generations: `bump` sends `NOTIFY kimari_generations, 'name:value'` in the writer's
  transaction (delivered on COMMIT). A listener thread per process holds its own
  connection with `LISTEN`, keeps the newest value of each counter, and reads the
  table itself every `POLL_S` seconds and after every reconnection, in case a
  notification was lost (NOTIFY is not delivered to a listener that was disconnected).
- Errors that mean "the database cannot be reached now" (connection refused or lost,
  the server shutting down or starting, no pooled connection within POOL_TIMEOUT_S,
  a serialization failure or deadlock) become StoreUnavailable: a retriable 503.
- Cursors over identity columns (`settled`): a row is numbered when it is inserted but
  seen only once its transaction commits, and transactions of several replicas commit in
  any order, so a reader may see row 12 while row 11 is still in flight, and a cursor
  "older than 12" taken then would never show 11. `settled` reads the highest number
  handed out, then waits (without blocking anyone: it watches `pg_locks`) until every
  transaction that held a write lock on the table at that moment has ended: every row at
  or below that number is then committed or never will be. A writer has its lock on the
  table before its INSERT numbers a row, so none can slip between the two readings.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool

from engine.core.errors import Diagnostic, StoreUnavailable
from engine.core.i18n import Msg
from engine.store.backend import (
    POSTGRESQL,
    Backend,
    Location,
    Session,
    Step,
    redact,
    statements,
    unavailable_on,
)

log = logging.getLogger("kimari.store")

CHANNEL = "kimari_generations"
POOL_MIN, POOL_MAX = 1, 5
POOL_TIMEOUT_S = 2.0  # a request waits this long for a connection, then gets a 503
CONNECT_TIMEOUT_S = 2
POLL_S = 1.0  # the listener's fallback: read the counters this often
DOWN_S = 0.25  # after a connection failure, answer 503 at once for this long
HOLD_WAIT_S = 5.0  # a flow event waits this long for another replica's event on its entity
SETTLE_WAIT_S = 2.0  # a first page waits this long for the table's writers in flight
MIGRATION_LOCK = 0x6B696D617269  # "kimari": the advisory lock key of migrations

# What "the database cannot be reached or refused this transaction for now" looks like.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,  # connection refused/lost, admin shutdown, pool timeout
    psycopg.InterfaceError,  # the connection was closed under us
    pg_errors.TransactionRollback,  # serialization failure, deadlock: retry
)


def _placeholders(sql: str) -> str:
    """SQL written with `?` in psycopg's form (`%s`; a literal % doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class PgSession:
    """A psycopg connection that takes the store's `?` placeholders."""

    __slots__ = ("conn",)
    _cache: dict[str, str] = {}  # noqa: RUF012  # SQL texts are few and constant

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    @classmethod
    def _sql(cls, sql: str) -> str:
        out = cls._cache.get(sql)
        if out is None:
            out = cls._cache[sql] = _placeholders(sql)
        return out

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self.conn.execute(self._sql(sql), params)  # type: ignore[arg-type]

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.conn.cursor() as cursor:
            cursor.executemany(self._sql(sql), rows)  # type: ignore[arg-type]


def _unreachable(exc: BaseException | None) -> bool:
    """The database itself is gone (not: this one statement waited too long for a lock)."""
    if isinstance(exc, psycopg.InterfaceError):
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate  # None: failed on our side (refused, reset, pool timeout)
    return state is None or state.startswith(("08", "57P"))  # connection, shutdown


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SET synchronous_commit = on")
    # A logged decision's ~2.9 KB row is past PostgreSQL's TOAST threshold, so its texts are
    # compressed at every insert: lz4 costs the server a quarter less CPU per row than pglz,
    # the default, for the same size (docs/benchmarks.md). PostgreSQL 14+ built with lz4 has
    # it (Debian's does); an older or other build refuses the setting and keeps pglz.
    try:
        conn.execute("SET default_toast_compression = 'lz4'")
    except psycopg.Error as exc:
        log.info("PostgreSQL keeps pglz for long values: %s", exc)


def _configure_readonly(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SET default_transaction_read_only = on")  # a query's sessions never write


class PostgresBackend(Backend):
    kind = POSTGRESQL

    def __init__(self, location: Location, *, readonly: bool = False) -> None:
        self.location = location
        self.url = location.target
        self.readonly = readonly
        self.pool = ConnectionPool(
            self.url,
            min_size=POOL_MIN,
            max_size=POOL_MAX,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
            configure=_configure_readonly if readonly else _configure,
            timeout=POOL_TIMEOUT_S,
            reconnect_timeout=24 * 3600.0,  # keep trying: the database will come back
            name=f"kimari {redact(self.url)}",
            open=False,
        )
        with unavailable_on(UNAVAILABLE, "PostgreSQL"):
            # one plain connection first: a database that is not there says why at once,
            # instead of after the pool's retries
            psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT_S).close()
            self.pool.open(wait=True, timeout=POOL_TIMEOUT_S * 2)
        self._down_until = 0.0
        self._purging = threading.Lock()
        self._known: dict[str, int] = {}
        self._known_lock = threading.Lock()
        self._listener: threading.Thread | None = None
        self._closing = threading.Event()
        self.notifications = 0  # received: for tests and stats
        self._sequences: dict[tuple[str, str], str] = {}  # (table, column) -> its sequence

    # -- sessions ----------------------------------------------------------------------
    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """StoreUnavailable for the driver's "cannot reach the database"; and for a short
        while after one, without waiting POOL_TIMEOUT_S again for each request (the
        pool reconnects meanwhile, in its own threads)."""
        if time.monotonic() < self._down_until:
            raise StoreUnavailable(
                [Diagnostic("store_unavailable", Msg("PostgreSQL was unreachable a moment ago"))]
            )
        try:
            with unavailable_on(UNAVAILABLE, "PostgreSQL"):
                yield
        except StoreUnavailable as exc:
            if _unreachable(exc.__cause__):
                self._down_until = time.monotonic() + DOWN_S
                self._purge()
            raise

    def _purge(self) -> None:
        """Drop the pool's broken idle connections (in the background: with the database
        down, checking them takes a moment); the pool replaces them when it can."""
        if not self._purging.acquire(blocking=False):
            return  # one purge at a time

        def purge() -> None:
            try:
                self.pool.check()
            except Exception as exc:  # the pool closed meanwhile: nothing to purge
                log.debug("pool check failed: %s", exc)
            finally:
                self._purging.release()

        threading.Thread(target=purge, name="kimari-pool-check", daemon=True).start()

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with self._guard(), self.pool.connection() as conn:
            yield PgSession(conn)

    @contextlib.contextmanager
    def write(self, *keys: str) -> Iterator[Session]:
        with (
            self._guard(),
            self.pool.connection() as conn,
            conn.transaction(),
        ):
            session = PgSession(conn)
            for key in sorted(set(keys)):
                conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))
            yield session

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[None]:
        """Hold `key` across a read-decide-write (flows: an entity, while its event is
        decided): other replicas' holders wait instead of deciding on a version about to
        change and retrying. A lock of its own connection and transaction, apart from the
        `write` locks the block takes (on the same key they would wait for each other).
        Waits at most HOLD_WAIT_S, then StoreUnavailable (503, retriable)."""
        with self._guard(), self.pool.connection() as conn, conn.transaction():
            conn.execute(f"SET LOCAL lock_timeout = '{int(HOLD_WAIT_S * 1000)}ms'")
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 1))", (key,))
            yield

    def migrate(self, component: str, steps: Sequence[Step | str]) -> None:
        if self.readonly:  # a query that migrates is a bug (and its sessions would refuse)
            raise RuntimeError(f"the store {self.location} was opened read-only")
        with self.write() as session:
            session.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            session.execute(
                "CREATE TABLE IF NOT EXISTS schema_versions ("
                " component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
            row = session.execute(
                "SELECT version FROM schema_versions WHERE component = ?", (component,)
            ).fetchone()
            current = row[0] if row else 0
            for step in steps[current:]:
                text = step.text(POSTGRESQL) if isinstance(step, Step) else step
                for statement in statements(text):
                    session.execute(statement)
            session.execute(
                "INSERT INTO schema_versions (component, version) VALUES (?, ?) "
                "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                (component, len(steps)),
            )

    def tables(self, session: Session) -> set[str]:
        rows = session.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        ).fetchall()
        return {str(row[0]) for row in rows}

    # -- cursors -----------------------------------------------------------------------
    def settled(self, table: str, column: str) -> int | None:
        """The highest number handed out in `column` once every writer of `table` that
        might hold a lower one has ended (see the module's docstring). StoreUnavailable if
        one is still in flight after SETTLE_WAIT_S (a replica stopped mid-commit, say):
        a retriable 503 rather than a page that may skip a row."""
        with self._guard(), self.pool.connection() as conn:
            sequence = self._sequences.get((table, column))
            if sequence is None:
                found = conn.execute(
                    "SELECT pg_get_serial_sequence(%s, %s)", (table, column)
                ).fetchone()
                sequence = self._sequences[(table, column)] = str(found[0])
            # first the number, then the writers: a row numbered before the first reading
            # belongs to a transaction that held its table lock by then
            last, called = conn.execute(f"SELECT last_value, is_called FROM {sequence}").fetchone()
            horizon = int(last) if called else int(last) - 1
            writers = [
                row[0]
                for row in conn.execute(
                    "SELECT virtualtransaction FROM pg_locks WHERE locktype = 'relation' "
                    "AND database = (SELECT oid FROM pg_database "
                    "WHERE datname = current_database()) "
                    "AND relation = %s::regclass AND mode = 'RowExclusiveLock' AND granted "
                    "AND pid <> pg_backend_pid()",
                    (table,),
                )
            ]
            deadline = time.monotonic() + SETTLE_WAIT_S
            while writers:
                writers = [
                    row[0]
                    for row in conn.execute(
                        "SELECT virtualxid FROM pg_locks WHERE locktype = 'virtualxid' "
                        "AND virtualxid = ANY(%s)",
                        (writers,),
                    )
                ]
                if writers and time.monotonic() > deadline:
                    raise StoreUnavailable(
                        [
                            Diagnostic(
                                "store_unavailable",
                                Msg(
                                    "PostgreSQL: a transaction writing {table} has been open "
                                    "for more than {seconds} s",
                                    table=table,
                                    seconds=format(SETTLE_WAIT_S, "g"),
                                ),
                            )
                        ]
                    )
                if writers:
                    time.sleep(0.002)
            return horizon

    # -- generations -------------------------------------------------------------------
    def notify(self, session: Session, name: str, value: int) -> None:
        session.execute("SELECT pg_notify(?, ?)", (CHANNEL, f"{name}:{value}"))
        self._observe(name, value)  # this process knows already

    def generation(self, name: str) -> int:
        """The newest value this process was told of (the listener starts on first use)."""
        if self._listener is None:
            self._start_listener()
        with self._known_lock:
            return self._known.get(name, 0)

    def generations(self) -> dict[str, int]:
        if self._listener is None:
            self._start_listener()
        with self._known_lock:
            return dict(self._known)

    def fresh_generation(self, name: str) -> int:
        """The counter as the database has it now (one query)."""
        with self.read() as session:
            value = self.read_generation(session, name)
        self._observe(name, value)
        return value

    def _observe(self, name: str, value: int) -> None:
        with self._known_lock:  # counters only grow: an older message changes nothing
            if value > self._known.get(name, 0):
                self._known[name] = value

    def _start_listener(self) -> None:
        with self._known_lock:
            if self._listener is not None:
                return
            self._listener = threading.Thread(
                target=self._listen, name="kimari-listen", daemon=True
            )
        self._poll()  # the first answer is exact, not 0 until a notification comes
        self._listener.start()

    def _poll(self) -> None:
        with contextlib.suppress(Exception), self.read() as session:
            for name, value in session.execute("SELECT name, value FROM generations"):
                self._observe(name, int(value))

    def _listen(self) -> None:
        while not self._closing.is_set():
            try:
                with psycopg.connect(
                    self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._poll()  # what was sent while we were not listening
                    while not self._closing.is_set():
                        for note in conn.notifies(timeout=POLL_S):
                            name, _, value = note.payload.rpartition(":")
                            self.notifications += 1
                            self._observe(name, int(value))
                        self._poll()
            except Exception as exc:  # the database went away: listen again when it is back
                if self._closing.is_set():
                    return
                log.warning("listening for store changes failed: %s; again in 0.5 s", exc)
                self._poll()
                time.sleep(0.5)

    def close(self) -> None:
        self._closing.set()  # the listener sees it within POLL_S (a daemon thread meanwhile)
        self.pool.close()
