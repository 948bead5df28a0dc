"""Where the store lives, and the small interface that SQLite and PostgreSQL both implement.

    open_backend("var/kimari.sqlite3")                    SQLite file (the embedded default)
    open_backend("sqlite:///var/kimari.sqlite3")          the same, as a URL
    open_backend("postgresql://kimari@db.example/kimari") PostgreSQL (engine/store/postgres.py)

Each store component (decisions.py, flows.py, versions.py) writes its logic once against a
`Backend`; what differs between the two databases sits here and in the two modules behind it:

- SQL is written once, with `?` placeholders (PostgreSQL's session turns them into `%s`);
- DDL is a list of migration `Step`s, each with its text per backend where the dialects
  differ (`INTEGER PRIMARY KEY AUTOINCREMENT` vs an identity column, `WITHOUT ROWID`);
  a table `schema_versions` in each database says how many steps of each component it
  has applied;
- the write discipline is `backend.write(*keys)`: one transaction in which what the
  writer reads cannot change before it commits. SQLite takes the file's WriteLock and
  `BEGIN IMMEDIATE` (one writer at a time, whatever the keys); PostgreSQL begins a
  transaction and takes a transaction-scoped advisory lock per key (writers of the same
  key take turns; others run side by side), so a compare-and-set on rows read inside it
  holds across replicas;
- generation counters (`generation`, `notify`): a writer that changes what replicas serve
  bumps a counter in the same transaction; SQLite's readers read it (one local query),
  PostgreSQL's readers are told by `NOTIFY` and keep the value (with a periodic check
  for lost notifications).

Failures of the database itself (a restart, a lost connection, a busy file) are raised as
`StoreUnavailable` (503 `store_unavailable`, retriable): the write did not happen, or at
least was never acknowledged.

A backend opened with `readonly=True` (the CLI's queries: `kimari log`, `history`,
`revisions`, `audit`, `diff`) needs no write access and changes nothing: SQLite opens the file
with `mode=ro` and no lock file, PostgreSQL's sessions are read-only; its components run no
migrations but `require` the versions their code reads (store_missing for a file or database
without tables, store_invalid for one that is no kimari store, store_outdated for one older
than the code), and a component the store does not hold yet reads as empty on SQLite.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from engine.core.errors import Diagnostic, StoreUnavailable, UsageError
from engine.core.i18n import Msg

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
MEMORY = ":memory:"
DEFAULT_LOCATION = str(Path("var") / "kimari.sqlite3")


@dataclass(frozen=True)
class Location:
    """A parsed store location: which backend, and its file path or connection URL."""

    kind: str
    target: str

    def __str__(self) -> str:
        return self.target if self.kind == SQLITE else redact(self.target)


def parse_location(text: str | Path | Location) -> Location:
    """`postgresql://…` or `postgres://…`: PostgreSQL; `sqlite:///relative/path`,
    `sqlite:////absolute/path` (SQLAlchemy's convention) or a plain path: SQLite."""
    if isinstance(text, Location):
        return text
    raw = str(text)
    scheme, sep, rest = raw.partition("://")
    if not sep or "/" in scheme or "\\" in scheme:  # a path (which may hold '://' deeper)
        return Location(SQLITE, raw)
    scheme = scheme.lower()
    if scheme in ("postgresql", "postgres"):
        url = f"{scheme}://{rest}"  # libpq reads the scheme in lower case only
        _check_postgres_url(url)
        return Location(POSTGRESQL, url)
    if scheme == SQLITE:
        if not rest.startswith("/") or rest == "/":
            raise UsageError(
                [
                    Diagnostic(
                        "store_invalid",
                        Msg(
                            "store '{store}': write sqlite:///relative/path or "
                            "sqlite:////absolute/path",
                            store=raw,
                        ),
                    )
                ]
            )
        return Location(SQLITE, rest[1:])
    raise UsageError(
        [
            Diagnostic(
                "store_invalid",
                Msg(
                    "store '{store}': unknown scheme '{scheme}' (a file path, sqlite:///path or "
                    "postgresql://user@host/db)",
                    store=redact(raw),
                    scheme=scheme,
                ),
            )
        ]
    )


def _check_postgres_url(raw: str) -> None:
    """A URL libpq cannot read is the command's mistake (store_invalid), said without its
    password: psycopg's own error quotes the whole URL, and was an internal error."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(raw)
    except psycopg.Error as exc:
        reason = str(exc).strip().replace(raw, redact(raw))
        message = Msg(
            "store '{store}' is not a PostgreSQL URL libpq reads: {reason}",
            store=redact(raw),
            reason=reason,
        )
        raise UsageError([Diagnostic("store_invalid", message)]) from None


def redact(url: str) -> str:
    """A URL fit for a log line: its password replaced by ***."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    userinfo, at, host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


@dataclass(frozen=True)
class Step:
    """One migration: its statements (separated by ';') on each backend."""

    sqlite: str
    postgresql: str

    def text(self, kind: str) -> str:
        return self.sqlite if kind == SQLITE else self.postgresql


def both(sql: str) -> Step:
    """A migration step whose SQL is the same on both backends."""
    return Step(sql, sql)


def statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


class Cursor(Protocol):
    rowcount: int
    description: Any

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Session(Protocol):
    """What a read or a write transaction gets: statements with `?` placeholders."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any: ...


class Backend(ABC):
    """One database, shared by every store component of a process (and its threads)."""

    kind: str
    location: Location
    readonly: bool = False  # opened for queries: components `require`, never `migrate`

    @abstractmethod
    def read(self) -> contextlib.AbstractContextManager[Session]:
        """A session for reads (each statement sees what was committed before it)."""

    @abstractmethod
    def write(self, *keys: str) -> contextlib.AbstractContextManager[Session]:
        """One write transaction, committed at the end of the block, rolled back on error.
        `keys`: what it reads and must hold until it commits (an entity, say)."""

    def hold(self, key: str) -> contextlib.AbstractContextManager[None]:
        """Hold `key` while the caller reads, decides and writes (several `write`s may run
        inside): writers that hold the same key take turns (PostgreSQL: an advisory lock;
        SQLite: a byte of a file beside it, not its one writer lock, which would stop every
        other writer while one decides). A compare-and-set on a version inside `write`
        stays the safety net. A backend that holds nothing (this default) relies on it."""
        return contextlib.nullcontext()

    @abstractmethod
    def migrate(self, component: str, steps: Sequence[Step | str]) -> None:
        """Apply the steps of `component` this database has not applied yet, in one
        transaction (a crash mid-upgrade changes nothing); concurrent starters wait.
        A step given as plain text is the same SQL on both backends (as `both`)."""

    def require(self, component: str, steps: Sequence[Step | str]) -> None:
        """A read-only backend's `migrate`: check, changing nothing, that the store holds
        `component` as its `steps` leave it. UsageError store_missing (no tables at all),
        store_invalid (tables, but no kimari store's) or store_outdated (fewer steps applied:
        a command that writes migrates it); a component the store does not hold at all is
        handed to `stand_in`."""
        with self.read() as session:
            tables = self.tables(session)
            versions: dict[str, int] = {}
            if "schema_versions" in tables:
                rows = session.execute("SELECT component, version FROM schema_versions")
                versions = {str(name): int(version) for name, version in rows.fetchall()}
        store = str(self.location)
        if not tables:
            raise UsageError(
                [
                    Diagnostic(
                        "store_missing",
                        Msg("{path} holds no store: it has no tables", path=store),
                        hint=Msg("`kimari serve` creates it and publishes the policies folder"),
                    )
                ]
            )
        if "schema_versions" not in tables:
            reason = Msg(
                "{path} is not a kimari store: it has no table schema_versions", path=store
            )
            raise UsageError([Diagnostic("store_invalid", reason)])
        have = versions.get(component, 0)
        if have == 0:
            self.stand_in(component, steps)
        elif have < len(steps):
            raise UsageError([outdated(store, component, have, len(steps))])

    def stand_in(self, component: str, steps: Sequence[Step | str]) -> None:
        """Read-only: `component` has no tables in the store yet; its reads are to find it
        empty (SQLite), or the store is outdated for them (store_outdated)."""
        raise UsageError([outdated(str(self.location), component, 0, len(steps))])

    def tables(self, session: Session) -> set[str]:
        """The names of the store's own tables."""
        raise NotImplementedError

    @abstractmethod
    def notify(self, session: Session, name: str, value: int) -> None:
        """Inside a write: tell other processes that counter `name` is now `value`."""

    @abstractmethod
    def generation(self, name: str) -> int:
        """The counter `name` as this process knows it: cheap enough to ask per request.
        PostgreSQL's may lag the database by a notification's delay (or the fallback
        poll's period, if a notification was lost)."""

    def generations(self) -> dict[str, int]:
        """Every counter, as `generation` knows them: what a poller compares per turn
        (SQLite: one local query; PostgreSQL: what the notifications said, no query)."""
        with self.read() as session:
            rows = session.execute("SELECT name, value FROM generations").fetchall()
        return {str(name): int(value) for name, value in rows}

    def settled(self, table: str, column: str) -> int | None:
        """The highest value of `column` (an identity column, numbered at insert) at or below
        which no row of `table` can still appear: what a cursor over that column may start
        from without passing over a row that commits later. None: no bound is needed.

        SQLite numbers rows inside its one writer's transaction, so in commit order: None.
        PostgreSQL numbers a row when it is inserted, and concurrent transactions commit in
        any order; its backend waits for the writers in flight (engine/store/postgres.py)."""
        return None

    @abstractmethod
    def close(self) -> None: ...

    # -- shared helpers ------------------------------------------------------------------
    def read_generation(self, session: Session, name: str) -> int:
        row = session.execute("SELECT value FROM generations WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def bump(self, session: Session, name: str) -> int:
        """Add one to counter `name` inside a write and tell the others; the new value."""
        session.execute(
            "INSERT INTO generations (name, value) VALUES (?, 1) "
            "ON CONFLICT (name) DO UPDATE SET value = generations.value + 1",
            (name,),
        )
        value = self.read_generation(session, name)
        self.notify(session, name, value)
        return value


def outdated(store: str, component: str, have: int, want: int) -> Diagnostic:
    """A store older than the code reading it, which a read-only command does not migrate."""
    return Diagnostic(
        "store_outdated",
        Msg(
            "the store {path} is older than this kimari: its {component} tables are at "
            "version {have} of {want}",
            path=store,
            component=component,
            have=have,
            want=want,
        ),
        hint=Msg(
            "a command that writes to it migrates it (`kimari serve`); "
            "a command that only reads never changes it"
        ),
    )


GENERATIONS = both(
    """
    CREATE TABLE IF NOT EXISTS generations (
        name TEXT PRIMARY KEY,
        value BIGINT NOT NULL
    )
    """
)


class Shared:
    """A backend handed to several components: the first opener owns it, and closes it."""

    def __init__(self, backend: Backend, owned: bool) -> None:
        self.backend, self.owned = backend, owned

    def close(self) -> None:
        if self.owned:
            self.backend.close()


class Component:
    """One part of the store: its tables, migrated when it is opened, on a backend that it
    opens itself (a location) or shares with the process's other components (a Backend:
    one connection pool and one write discipline for all of them)."""

    name: ClassVar[str]
    steps: ClassVar[Sequence[Step | str]]
    # components whose tables this one's steps need, migrated first
    needs: ClassVar[tuple[tuple[str, Sequence[Step | str]], ...]] = ()

    def __init__(self, location: str | Path | Location | Backend) -> None:
        self._shared = share(location)
        self.backend = self._shared.backend
        for name, steps in (*self.needs, (self.name, self.steps)):
            if self.backend.readonly:
                self.backend.require(name, steps)
            else:
                self.backend.migrate(name, steps)

    def close(self) -> None:
        self._shared.close()


def open_backend(location: str | Path | Location | Backend, *, readonly: bool = False) -> Backend:
    """The backend of a location (a Backend given is returned as it is). `readonly`: for
    queries, which need no write access and change nothing (no migration, no lock file, no
    new file: an SQLite file that is not there is store_missing)."""
    if isinstance(location, Backend):
        return location
    parsed = parse_location(location)
    if parsed.kind == POSTGRESQL:
        from engine.store.postgres import PostgresBackend  # psycopg only when asked for

        return PostgresBackend(parsed, readonly=readonly)
    from engine.store.sqlite import SqliteBackend

    if readonly and parsed.target != MEMORY and not Path(parsed.target).is_file():
        raise UsageError(
            [
                Diagnostic(
                    "store_missing",
                    Msg("no store at {path}", path=str(parsed)),
                    hint=Msg("`kimari serve` creates it and publishes the policies folder"),
                )
            ]
        )
    return SqliteBackend(parsed.target, readonly=readonly)


def share(location: str | Path | Location | Backend) -> Shared:
    """For a component's constructor: the backend to use, and whether it must close it."""
    if isinstance(location, Backend):
        return Shared(location, owned=False)
    return Shared(open_backend(location), owned=True)


@contextlib.contextmanager
def unavailable_on(errors: tuple[type[BaseException], ...], what: str) -> Iterator[None]:
    """Turn the driver's errors that mean "the database cannot be reached now" into
    StoreUnavailable, keeping the cause for the logs."""
    try:
        yield
    except errors as exc:
        # one line: libpq's messages hold newlines and tabs, which a terminal shows escaped
        reason = " ".join(str(exc).split())
        raise StoreUnavailable(
            [Diagnostic("store_unavailable", f"{what}: {type(exc).__name__}: {reason}".strip())]
        ) from exc
