"""The embedded SQLite store: one file, shared by the decision log, flow state and data sets.

`SqliteBackend` is the store's Backend (engine/store/backend.py) on a file; every component
(versions.py, decisions.py, flows.py) connects, migrates and writes through it, with:

- `connect`: WAL (readers never block the writer) and synchronous=FULL (an
  acknowledged write survives a power cut); `Connections` gives each thread its
  own connection, for a component used from several threads.
- `WriteLock`: one writer at a time across the processes of the file, an flock
  beside it. A waiting writer wakes the moment the lock is free, instead of
  sleeping in SQLite's busy handler (1, 2, 5, 10... ms), which would cap
  throughput and spoil the tail latency of group commits.
- `Holds`: a key (a flow's entity) held across the processes of the file while its
  event is read, decided and written, a byte of a second file beside it locked with
  fcntl.lockf; the compare-and-set inside `write` stays the safety net.
- `transaction(conn, lock)`: the write discipline. The lock first, then BEGIN
  IMMEDIATE ... COMMIT, rolled back on any error. Every writer takes it, so a
  process that kept to SQLite's own locking could not starve the others.
- `migrate`: each component owns its tables and declares them as a list of
  migration steps; those a database has not seen are applied in one such
  transaction, so that an old file is upgraded in place and a crash mid-upgrade
  changes nothing.
- errors that mean "the file cannot be written now" (locked past the busy timeout,
  I/O error, disk full) are raised as StoreUnavailable; any other is a bug, raised as is.

A reader (`SqliteBackend(path, readonly=True)`, the CLI's queries) opens the file with
`mode=ro`, takes no WriteLock (so creates no lock file) and runs no migration; a WAL file
in a folder it may not write, with no -shm beside it (no writer has it open), is read as
`immutable`. A component the file does not hold yet is stood in for by empty TEMP tables
of the reader's own connections.

Callers batch writes into one transaction (group commit) where it pays, to pay
for fsync once per batch. An in-memory database (`MEMORY`, for `kimari test`)
is one connection in one process: its lock is a thread lock, and the threads
take turns on the connection under it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import quote

from engine.core.errors import Diagnostic, StoreDamaged, StoreUnavailable
from engine.core.i18n import Msg
from engine.store.backend import MEMORY, SQLITE, Backend, Location, Session, Step, statements

DEFAULT_PATH = Path("var") / "kimari.sqlite3"
BUSY_TIMEOUT_MS = 10_000
# A logged decision is ~2.9 KB (request, response, outcome): a 4 KB page held one and
# left a quarter empty, and a group commit of 16 wrote 40-46 WAL frames (two write calls
# each). 16 KB pages hold five: the log's file is 18% smaller and its committer spends ~5%
# less CPU per row (docs/benchmarks.md). SQLite sets the size when it creates the file:
# a store created before keeps its own.
PAGE_SIZE = 16384
# sqlite3.OperationalError says both "the file is busy" and "your SQL is wrong": only these
# mean the former (SQLite's own messages)
_UNAVAILABLE = ("locked", "busy", "disk i/o error", "unable to open", "disk is full", "readonly")


def connect(path: str | Path = DEFAULT_PATH, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the store's pragmas; creates the file and its folder if needed."""
    if str(path) == MEMORY:
        conn = sqlite3.connect(MEMORY, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA foreign_keys=ON")
        return conn
    path = Path(path)
    if readonly:
        conn = _connect_readonly(path)
        conn.execute("PRAGMA temp_store=MEMORY")  # stand-in tables: no temporary file either
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")  # a no-op once the file has a page
        _use_wal(conn)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """The file opened read-only (`mode=ro`: SQLite neither creates nor writes it). A WAL
    file's reader needs its -shm, which SQLite creates beside it if the folder lets it; in a
    folder that does not, and with no writer's -wal there (none has it open, so the file
    holds every commit), it is read as `immutable` (no -shm needed)."""
    uri = f"file:{quote(str(path.absolute()))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens the WAL, if any
    except sqlite3.OperationalError as exc:
        wal = Path(f"{path}-wal")
        if "unable to open" not in str(exc) or (wal.exists() and wal.stat().st_size > 0):
            raise
        conn.close()
        conn = sqlite3.connect(
            f"{uri}&immutable=1", uri=True, check_same_thread=False, isolation_level=None
        )
    return conn


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL, waiting as a write would. Switching a new file takes an exclusive
    lock, and SQLite answers "database is locked" at once, without its busy handler, when
    another connection switches or writes it at that moment: replicas (or the threads of
    one worker) starting together on a new store did fail to start."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.002)


class WriteLock:
    """One writer at a time across the processes of a store (and re-entrant per thread).

    Components that share a file in one process share one WriteLock (the service's
    worker passes its own to each), so that their writers also take turns between
    threads; another process has its own, and the flock makes them take turns.
    """

    def __init__(self, db_path: str | Path) -> None:
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        if str(db_path) == MEMORY:  # no other process can see it: the thread lock suffices
            self.path: Path | None = None
            return
        self.path = Path(f"{db_path}.lock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX)  # releases the GIL while it waits
        self._depth += 1

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._thread_lock.release()

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)


# A flow event waits this long for another process's event on its entity, then goes on
# unheld (the compare-and-set still serialises), as PostgreSQL's hold waits HOLD_WAIT_S.
HOLD_WAIT_S = 5.0


class Holds:
    """Keys held across the processes of a store: each key is one byte of `<file>.hold`,
    locked with fcntl.lockf. Without it a process short of CPU could lose every
    compare-and-set round on an entity to one that kept committing, and give up
    (flow_contention) while nothing was wrong; holding, they take turns.

    POSIX record locks belong to the process: threads of one process do not exclude each
    other here (FlowEngine's entity lock does that), and two keys that share a byte only
    take turns more than they need. A hold that cannot be had in HOLD_WAIT_S, or on a file
    system without record locks, is given up: the caller goes on unheld."""

    SLOTS = 1 << 30

    def __init__(self, db_path: str | Path) -> None:
        self._fd: int | None = None
        if str(db_path) != MEMORY:
            path = Path(f"{db_path}.hold")
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[None]:
        if self._fd is None:
            yield
            return
        digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
        offset = int.from_bytes(digest, "big") % self.SLOTS
        held = self._take(self._fd, offset)
        try:
            yield
        finally:
            if held:
                with contextlib.suppress(OSError):
                    fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, offset)

    @staticmethod
    def _take(fd: int, offset: int) -> bool:
        deadline = time.monotonic() + HOLD_WAIT_S
        pause = 0.0005
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
                return True
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EAGAIN) or time.monotonic() > deadline:
                    return False
            time.sleep(pause)
            pause = min(pause * 2, 0.01)

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, lock: WriteLock) -> Iterator[sqlite3.Connection]:
    """The one way to write: `lock`, then BEGIN IMMEDIATE ... COMMIT, rolled back on any error.

    IMMEDIATE takes SQLite's write lock before the first read, so what a writer reads
    inside the transaction cannot change before it commits.
    """
    with lock:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def migrate(
    conn: sqlite3.Connection, lock: WriteLock, component: str, migrations: Sequence[str | Step]
) -> None:
    """Apply the migrations of `component` that this database has not applied yet."""
    with lock:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_versions ("
            " component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
        )
        with transaction(conn, lock):
            row = conn.execute(
                "SELECT version FROM schema_versions WHERE component = ?", (component,)
            ).fetchone()
            current = row[0] if row else 0
            for script in migrations[current:]:
                text = script.text(SQLITE) if isinstance(script, Step) else script
                for statement in statements(text):
                    conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_versions (component, version) VALUES (?, ?) "
                "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                (component, len(migrations)),
            )


class Connections:
    """A connection per thread to a file, for a component that several threads use.

    One sqlite3 connection cannot hold the transactions of two threads apart, so each
    thread gets its own (WAL: readers never wait for the writer). An in-memory
    database is one connection (a second would be another, empty database): `shared`
    is set, and its users take turns under the lock they write with.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = str(path)
        self.readonly = readonly
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self.shared = connect(MEMORY) if self.path == MEMORY else None
        self._stand_ins: list[str] = []  # readonly: TEMP tables every connection gets

    def get(self) -> sqlite3.Connection:
        """This thread's connection (the shared one in memory)."""
        if self.shared is not None:
            return self.shared
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, readonly=self.readonly)
            with self._guard:
                for statement in self._stand_ins:
                    conn.execute(statement)
                self._opened.append(conn)
            self._local.conn = conn
        return conn

    def stand_in(self, statements: Sequence[str]) -> None:
        """Run `statements` (CREATE TEMP TABLE) on every connection, opened or to come."""
        with self._guard:
            self._stand_ins.extend(statements)
            for conn in self._opened:
                for statement in statements:
                    conn.execute(statement)

    def close(self) -> None:
        with self._guard:
            for conn in self._opened:
                conn.close()
            self._opened.clear()
        if self.shared is not None:
            self.shared.close()
        self._local = threading.local()


@contextlib.contextmanager
def _store_errors(path: str) -> Iterator[None]:
    """SQLite's errors that are the file's, not the code's: busy or unreachable (retriable)
    and damaged (restore it)."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if not any(word in str(exc).lower() for word in _UNAVAILABLE):
            raise
        raise StoreUnavailable([Diagnostic("store_unavailable", f"SQLite: {exc}")]) from exc
    except sqlite3.DatabaseError as exc:
        if not any(word in str(exc).lower() for word in _DAMAGED):
            raise
        raise damaged(path, exc) from exc


# SQLITE_CORRUPT and SQLITE_NOTADB, in SQLite's own words
_DAMAGED = ("malformed", "not a database", "corrupt")


def damaged(path: str, exc: Exception) -> StoreDamaged:
    message = Msg(
        "the store {path} is damaged (SQLite: {reason}); restore it from a backup",
        path=path,
        reason=str(exc),
    )
    return StoreDamaged([Diagnostic("store_damaged", message)])


class SqliteBackend(Backend):
    """A SQLite file (or memory) as the store's Backend: a connection per thread, one
    WriteLock for every writer of the process, BEGIN IMMEDIATE for every write."""

    kind = SQLITE

    def __init__(self, path: str | Path = DEFAULT_PATH, *, readonly: bool = False) -> None:
        self.path = str(path)
        self.readonly = readonly
        self.location = Location(SQLITE, self.path)
        # a reader never writes: no flock, and so no lock file (a thread lock, as in memory)
        self.lock = WriteLock(MEMORY if readonly else self.path)
        self.holds = Holds(MEMORY if readonly else self.path)
        self.connections = Connections(self.path, readonly=readonly)
        self._model: sqlite3.Connection | None = None  # readonly: the code's schema, in memory

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (the one shared connection, in memory)."""
        return self.connections.get()

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with _store_errors(self.path):
            if self.connections.shared is not None:  # one connection: threads take turns
                with self.lock:
                    yield self.connection()
            else:
                yield self.connection()

    @contextlib.contextmanager
    def write(self, *keys: str) -> Iterator[Session]:
        """The file's one discipline, whatever the keys: the WriteLock, then BEGIN
        IMMEDIATE; one writer at a time in every process of the file."""
        self._writable()
        with _store_errors(self.path), transaction(self.connection(), self.lock) as conn:
            yield conn

    def migrate(self, component: str, steps: Sequence[Step | str]) -> None:
        self._writable()
        with _store_errors(self.path):
            migrate(self.connection(), self.lock, component, steps)

    def _writable(self) -> None:
        if self.readonly:  # a query that writes is a bug, not a busy file
            raise RuntimeError(f"the store {self.path} was opened read-only")

    def require(self, component: str, steps: Sequence[Step | str]) -> None:
        with _store_errors(self.path):
            if self._model is None:
                self._model = connect(MEMORY)
            # every component required so far, as the code makes them: what stands in for
            # one the file lacks (its tables may need those of a component before it)
            migrate(self._model, WriteLock(MEMORY), component, steps)
            super().require(component, steps)

    def tables(self, session: Session) -> set[str]:
        rows = session.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return {str(row[0]) for row in rows}

    def stand_in(self, component: str, steps: Sequence[Step | str]) -> None:
        """The file has none of the component's tables yet (a store that only `kimari
        flow` wrote, read by `kimari log`): empty TEMP tables of the same names and columns
        answer its reads, as the tables a writer would create would."""
        assert self._model is not None  # require made it
        with self.read() as session:
            present = self.tables(session)  # and those a component before it stood in for:
            temp = "SELECT name FROM sqlite_temp_master WHERE type = 'table'"
            present |= {str(row[0]) for row in session.execute(temp).fetchall()}
        # its tables (as TEMP tables), then their indexes (SQLite puts an index in its
        # table's schema): the reads name the indexes they use (INDEXED BY)
        rows = self._model.execute(
            "SELECT type, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL "
            "AND type IN ('table', 'index') AND tbl_name NOT LIKE 'sqlite_%' "
            "ORDER BY type = 'index'"
        ).fetchall()
        self.connections.stand_in(
            [
                _CREATE.sub("CREATE TEMP TABLE ", str(sql), count=1) if kind == "table" else sql
                for kind, table, sql in rows
                if table not in present
            ]
        )

    def notify(self, session: Session, name: str, value: int) -> None:
        """Nothing to send: other processes read the counter itself (a local query)."""

    def generation(self, name: str) -> int:
        with self.read() as session:
            return self.read_generation(session, name)

    def hold(self, key: str) -> contextlib.AbstractContextManager[None]:
        return self.holds.hold(key)

    def close(self) -> None:
        self.connections.close()
        self.lock.close()
        self.holds.close()
        if self._model is not None:
            self._model.close()


_CREATE = re.compile(r"^\s*CREATE\s+TABLE\s+", re.IGNORECASE)
