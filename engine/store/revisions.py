"""Policy revisions as records: drafts, pending, published; publications; the audit trail; jobs.

The text a revision was compiled from lives in `policy_revisions` (engine/store/versions.py,
keyed by its content hash, the `revision` every decision names); these tables say what
people did with it:

    lifecycle_revisions  (policy_id, number) -> one proposed change: its content hash, state
                         (draft, pending, published, retired, rejected), the published number
                         it was based on, author, time, message, the data-set versions it
                         reads by default, its tests (source and results), its impact summary,
                         approver
    publications         append-only: every time a revision went live (bootstrap, approval,
                         a direct publication, a rollback), by whom; the newest row of a
                         policy is what the service serves, and its id is the `publication`
                         each decision names
    audit_log            append-only: every lifecycle step and refusal-free action, by whom
    jobs                 long work (impact, submission) run outside the service's workers:
                         state, progress, report; `active` holds the policy id while a job
                         runs, so a UNIQUE constraint allows one job per policy at a time
    watch_served         `kimari serve --watch`: the last revision each policy served, so a
                         restart with a broken file serves it instead of nothing
    lifecycle_settings   what the service requires of every user of the store (the
                         approvals a revision needs), so the CLI cannot do with less

Workers learn of publications by the `generations` counters ('policies' on a publication,
'revisions' on any change of a record) that they already poll for data sets.

Written once for both backends (engine/store/backend.py: SQLite, PostgreSQL): each write is
one `backend.write(key)` transaction (the policy id is the key: on PostgreSQL writers of
one policy take turns, on SQLite the file's one writer), with its audit row and its
generation bump (NOTIFYed on PostgreSQL) inside it; the SQL is written once (`?`
placeholders, INSERT ... ON CONFLICT, RETURNING), the DDL differs only in the identity
columns. Rules of the lifecycle (who may approve what) are engine/lifecycle's; this class
only refuses what would break the records (`StaleState`: the row is not in the state the
caller read).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from engine.core.jsonvalue import dumps_text, loads_logged
from engine.store import versions
from engine.store.backend import Component, Session, Step

COMPONENT = "lifecycle"
_TABLES = """
    CREATE TABLE lifecycle_revisions (
        policy_id TEXT NOT NULL,
        number INTEGER NOT NULL,
        revision TEXT NOT NULL,
        state TEXT NOT NULL,
        base INTEGER,
        author TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        message TEXT NOT NULL,
        data TEXT NOT NULL,
        tests_source TEXT,
        tests TEXT,
        impact TEXT,
        approver TEXT,
        approved_at BIGINT,
        PRIMARY KEY (policy_id, number)
    );
    CREATE TABLE publications (
        id {serial},
        policy_id TEXT NOT NULL,
        number INTEGER NOT NULL,
        revision TEXT NOT NULL,
        kind TEXT NOT NULL,
        principal TEXT NOT NULL,
        published_at BIGINT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX publications_by_policy ON publications (policy_id, id);
    CREATE TABLE audit_log (
        seq {serial},
        at BIGINT NOT NULL,
        principal TEXT NOT NULL,
        action TEXT NOT NULL,
        policy_id TEXT NOT NULL,
        number INTEGER,
        detail TEXT NOT NULL
    );
    CREATE INDEX audit_by_policy ON audit_log (policy_id, seq);
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        policy_id TEXT NOT NULL,
        active TEXT UNIQUE,
        state TEXT NOT NULL,
        principal TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        started_at BIGINT,
        finished_at BIGINT,
        heartbeat BIGINT NOT NULL,
        done BIGINT NOT NULL,
        total BIGINT,
        params TEXT NOT NULL,
        report TEXT,
        error TEXT,
        cancel_requested INTEGER NOT NULL
    );
    CREATE INDEX jobs_by_policy ON jobs (policy_id, created_at);
    CREATE TABLE watch_served (
        policy_id TEXT PRIMARY KEY,
        revision TEXT NOT NULL,
        served_at BIGINT NOT NULL
    );
    CREATE TABLE lifecycle_settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )
"""
MIGRATIONS = [
    Step(
        _TABLES.format(serial="INTEGER PRIMARY KEY AUTOINCREMENT"),
        _TABLES.format(serial="BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    ),
]

STATES = ("draft", "pending", "published", "retired", "rejected")
JOB_STATES = ("running", "done", "failed", "cancelled")
POLICIES = "policies"  # generation bumped on every publication
REVISIONS = "revisions"  # generation bumped on every change of a revision record


def now_ms() -> int:
    return int(time.time() * 1000)


class StaleState(Exception):
    """A write found a row other than the caller read it (someone acted in between)."""


class JobBusy(Exception):
    """A job of this policy is already running."""

    def __init__(self, job: Job) -> None:
        super().__init__(job.id)
        self.job = job


@dataclass(frozen=True)
class RevisionRecord:
    policy_id: str
    number: int
    revision: str  # the content hash (policy_revisions.revision)
    state: str
    base: int | None  # the published number it was based on; None: nothing was published
    author: str
    created_at: int
    message: str
    data: Mapping[str, str]  # data set -> default version
    tests_source: str | None = None
    tests: Mapping[str, Any] | None = None
    impact: Mapping[str, Any] | None = None
    approver: str | None = None
    approved_at: int | None = None

    @property
    def ref(self) -> str:
        return f"{self.policy_id}@{self.number}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy_id,
            "number": self.number,
            "ref": self.ref,
            "revision": self.revision,
            "state": self.state,
            "base": self.base,
            "author": self.author,
            "created_at": self.created_at,
            "message": self.message,
            "data": dict(self.data),
            "tests": self.tests,
            "impact": self.impact,
            "approver": self.approver,
            "approved_at": self.approved_at,
        }


@dataclass(frozen=True)
class Publication:
    id: int
    policy_id: str
    number: int
    revision: str
    kind: str  # bootstrap, approval, direct, rollback
    principal: str
    published_at: int
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "publication": self.id,
            "policy": self.policy_id,
            "number": self.number,
            "revision": self.revision,
            "kind": self.kind,
            "principal": self.principal,
            "published_at": self.published_at,
            "message": self.message,
        }


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: int
    principal: str
    action: str
    policy_id: str
    number: int | None
    detail: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "principal": self.principal,
            "action": self.action,
            "policy": self.policy_id,
            "number": self.number,
            "detail": dict(self.detail),
        }


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    policy_id: str
    state: str
    principal: str
    created_at: int
    started_at: int | None
    finished_at: int | None
    heartbeat: int
    done: int
    total: int | None
    params: Mapping[str, Any]
    report: Mapping[str, Any] | None = None
    error: Any = None
    cancel_requested: bool = False

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "policy": self.policy_id,
            "state": self.state,
            "principal": self.principal,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "progress": {"done": self.done, "total": self.total},
            "params": dict(self.params),
            "cancel_requested": self.cancel_requested,
            "report": self.report,
            "error": self.error,
        }


@dataclass
class NewRevision:
    """What a caller gives to create a revision record."""

    policy_id: str
    revision: str
    state: str
    author: str
    message: str
    data: Mapping[str, str] = field(default_factory=dict)
    base: int | None = None
    tests_source: str | None = None
    tests: Mapping[str, Any] | None = None
    impact: Mapping[str, Any] | None = None


_REVISION_COLUMNS = (
    "policy_id, number, revision, state, base, author, created_at, message, data, "
    "tests_source, tests, impact, approver, approved_at"
)
_PUBLICATION_COLUMNS = "id, policy_id, number, revision, kind, principal, published_at, message"
_JOB_COLUMNS = (
    "id, kind, policy_id, state, principal, created_at, started_at, finished_at, heartbeat, "
    "done, total, params, report, error, cancel_requested"
)


def _json(value: Any) -> str | None:
    """A job's parameters or result as JSON: exact decimals (an impact's new data may hold
    one a double cannot, read exactly from the request)."""
    return None if value is None else dumps_text(value)


def _loads(text: str | None) -> Any:
    return None if text is None else loads_logged(text)


def _revision(row: tuple[Any, ...]) -> RevisionRecord:
    return RevisionRecord(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        row[7],
        orjson.loads(row[8]),
        row[9],
        _loads(row[10]),
        _loads(row[11]),
        row[12],
        row[13],
    )


def _publication(row: tuple[Any, ...]) -> Publication:
    return Publication(*row)


def _job(row: tuple[Any, ...]) -> Job:
    return Job(
        *row[:11],
        _loads(row[11]),
        _loads(row[12]),
        _loads(row[13]),
        bool(row[14]),
    )


class RevisionStore(Component):
    """Revision records, publications, the audit trail and jobs, on a backend (a location,
    or a Backend shared with the process's other components)."""

    name = COMPONENT
    steps = MIGRATIONS
    # the generations table is the service store's (versions.py): it must exist first
    needs = ((versions.COMPONENT, versions.MIGRATIONS),)

    @property
    def location(self) -> str:
        """Where the store is, as a job process opens it again (a path or a URL)."""
        return self.backend.location.target

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self.backend.read() as session:
            return list(session.execute(sql, params).fetchall())

    def _row(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self.backend.read() as session:
            return session.execute(sql, params).fetchone()

    # -- reads ---------------------------------------------------------------------------
    def generations(self) -> dict[str, int]:
        """Every counter workers watch: 'policies', 'revisions' (and 'data'); on PostgreSQL
        as the notifications told this process."""
        return self.backend.generations()

    def published(self) -> dict[str, Publication]:
        """The publication each policy serves now: its newest."""
        rows = self._rows(
            f"SELECT {_PUBLICATION_COLUMNS} FROM publications WHERE id IN "
            "(SELECT MAX(id) FROM publications GROUP BY policy_id)"
        )
        return {row[1]: _publication(row) for row in rows}

    def publication_of(self, policy_id: str) -> Publication | None:
        row = self._row(
            f"SELECT {_PUBLICATION_COLUMNS} FROM publications WHERE policy_id = ? "
            "ORDER BY id DESC LIMIT 1",
            (policy_id,),
        )
        return _publication(row) if row else None

    def publications(self, policy_id: str, limit: int = 100) -> list[Publication]:
        rows = self._rows(
            f"SELECT {_PUBLICATION_COLUMNS} FROM publications WHERE policy_id = ? "
            "ORDER BY id DESC LIMIT ?",
            (policy_id, limit),
        )
        return [_publication(r) for r in rows]

    def publications_of(self, policy_id: str, low: int, high: int) -> list[Publication]:
        """Every publication of the revision records numbered `low` to `high`, oldest
        first: all of them, however many publications came since."""
        rows = self._rows(
            f"SELECT {_PUBLICATION_COLUMNS} FROM publications WHERE policy_id = ? "
            "AND number >= ? AND number <= ? ORDER BY id",
            (policy_id, low, high),
        )
        return [_publication(r) for r in rows]

    def was_published(self, policy_id: str, number: int) -> bool:
        """Whether revision `number` ever went live (a rollback may publish it again)."""
        row = self._row(
            "SELECT 1 FROM publications WHERE policy_id = ? AND number = ? LIMIT 1",
            (policy_id, number),
        )
        return row is not None

    def has_publications(self) -> bool:
        return self._row("SELECT 1 FROM publications LIMIT 1") is not None

    def record(self, policy_id: str, number: int) -> RevisionRecord | None:
        row = self._row(
            f"SELECT {_REVISION_COLUMNS} FROM lifecycle_revisions "
            "WHERE policy_id = ? AND number = ?",
            (policy_id, number),
        )
        return _revision(row) if row else None

    def records(
        self,
        policy_id: str,
        states: Iterable[str] | None = None,
        limit: int = 200,
        before: int | None = None,
    ) -> list[RevisionRecord]:
        """A policy's revision records, newest first; `before`: only those numbered below it
        (a cursor: the last number of the page before)."""
        wanted = list(states or ())
        where = "policy_id = ?"
        args: list[Any] = [policy_id]
        if wanted:
            where += f" AND state IN ({', '.join('?' for _ in wanted)})"
            args += wanted
        if before is not None:
            where += " AND number < ?"
            args.append(before)
        rows = self._rows(
            f"SELECT {_REVISION_COLUMNS} FROM lifecycle_revisions WHERE {where} "
            "ORDER BY number DESC LIMIT ?",
            (*args, limit),
        )
        return [_revision(r) for r in rows]

    def records_by_hash(self, policy_id: str, revision: str) -> list[RevisionRecord]:
        rows = self._rows(
            f"SELECT {_REVISION_COLUMNS} FROM lifecycle_revisions "
            "WHERE policy_id = ? AND revision = ? ORDER BY number DESC",
            (policy_id, revision),
        )
        return [_revision(r) for r in rows]

    def policy_ids(self) -> list[str]:
        rows = self._rows("SELECT DISTINCT policy_id FROM lifecycle_revisions")
        return sorted(r[0] for r in rows)

    def pending(self) -> dict[str, RevisionRecord]:
        """The newest pending revision of each policy that has one."""
        rows = self._rows(
            f"SELECT {_REVISION_COLUMNS} FROM lifecycle_revisions WHERE state = 'pending' "
            "ORDER BY policy_id, number"
        )
        return {r.policy_id: r for r in map(_revision, rows)}

    def submitter(self, policy_id: str, number: int) -> str | None:
        """Who last submitted a draft for approval (None: it was never a draft; whoever
        wrote a revision sent straight to pending is its author)."""
        row = self._row(
            "SELECT principal FROM audit_log WHERE policy_id = ? AND number = ? "
            "AND action = 'submit' ORDER BY seq DESC LIMIT 1",
            (policy_id, number),
        )
        return row[0] if row else None

    def audit(
        self, policy_id: str | None = None, limit: int = 100, before: int | None = None
    ) -> list[AuditEntry]:
        """The audit trail, newest first; `before`: a cursor (the last `seq` of a page). A
        first page ends at the backend's `settled` number (see DecisionLog.query)."""
        where, args = [], []
        if policy_id is not None:
            where.append("policy_id = ?")
            args.append(policy_id)
        if before is None:  # a first page: its cursor must not pass over a late commit
            settled = self.backend.settled("audit_log", "seq")
            before = None if settled is None else settled + 1
        if before is not None:
            where.append("seq < ?")
            args.append(before)
        sql = "SELECT seq, at, principal, action, policy_id, number, detail FROM audit_log"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._rows(sql + " ORDER BY seq DESC LIMIT ?", (*args, limit))
        return [AuditEntry(*r[:6], orjson.loads(r[6])) for r in rows]

    # -- writes: revision records -------------------------------------------------------
    def add(self, new: NewRevision) -> RevisionRecord:
        """A new record numbered after the policy's last; audited as its state."""
        if new.state not in ("draft", "pending"):
            raise ValueError(f"a new revision is a draft or pending, not {new.state}")
        stamp = now_ms()
        with self.backend.write(_key(new.policy_id)) as session:
            number = self._insert(session, new, stamp)
            self.backend.bump(session, REVISIONS)
        found = self.record(new.policy_id, number)
        assert found is not None
        return found

    def _insert(self, session: Session, new: NewRevision, stamp: int) -> int:
        """Inside a write keyed on the policy: the record, numbered after the policy's last,
        and its audit row; its number."""
        row = session.execute(
            "SELECT MAX(number) FROM lifecycle_revisions WHERE policy_id = ?",
            (new.policy_id,),
        ).fetchone()
        number = int(row[0] or 0) + 1
        session.execute(
            f"INSERT INTO lifecycle_revisions ({_REVISION_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
            (
                new.policy_id,
                number,
                new.revision,
                new.state,
                new.base,
                new.author,
                stamp,
                new.message,
                _json(dict(new.data)),
                new.tests_source,
                _json(new.tests),
                _json(new.impact),
            ),
        )
        action = "draft" if new.state == "draft" else "submit"
        detail = {"revision": new.revision, "message": new.message, "base": new.base}
        _audit(session, stamp, new.author, action, new.policy_id, number, detail)
        return number

    def bootstrap(self, new: NewRevision) -> Publication | None:
        """Publish `new` as the policy's first revision (kind 'bootstrap'), in one transaction
        keyed on the policy, unless the policy has a publication already: None then, and
        nothing written. Replicas starting together on an empty store each compile the
        folder and call this; one of them publishes each policy, once."""
        if new.state != "pending":
            raise ValueError(f"a bootstrap revision is pending, not {new.state}")
        stamp = now_ms()
        with self.backend.write(_key(new.policy_id)) as session:
            if session.execute(
                "SELECT 1 FROM publications WHERE policy_id = ? LIMIT 1", (new.policy_id,)
            ).fetchone():
                return None
            number = self._insert(session, new, stamp)
            publication = self._publish_in(
                session,
                new.policy_id,
                number,
                new.revision,
                None,
                principal=new.author,
                kind="bootstrap",
                message=new.message,
                approver=None,
                stamp=stamp,
            )
        return publication

    def submit(
        self,
        policy_id: str,
        number: int,
        principal: str,
        *,
        base: int | None,
        tests: Mapping[str, Any] | None,
        impact: Mapping[str, Any] | None,
        message: str = "",
    ) -> RevisionRecord:
        """A draft becomes pending, with its tests, its impact and the base they were run on;
        the submitter's `message` is the audit row's (the record keeps the draft's)."""
        stamp = now_ms()
        with self.backend.write(_key(policy_id)) as session:
            changed = session.execute(
                "UPDATE lifecycle_revisions SET state = 'pending', base = ?, tests = ?, "
                "impact = ? WHERE policy_id = ? AND number = ? AND state = 'draft'",
                (base, _json(tests), _json(impact), policy_id, number),
            ).rowcount
            if changed != 1:
                raise StaleState(f"{policy_id}@{number} is not a draft")
            detail = {"message": message, "base": base}
            _audit(session, stamp, principal, "submit", policy_id, number, detail)
            self.backend.bump(session, REVISIONS)
        found = self.record(policy_id, number)
        assert found is not None
        return found

    def reject(self, policy_id: str, number: int, principal: str, message: str) -> RevisionRecord:
        stamp = now_ms()
        with self.backend.write(_key(policy_id)) as session:
            changed = session.execute(
                "UPDATE lifecycle_revisions SET state = 'rejected' WHERE policy_id = ? "
                "AND number = ? AND state IN ('draft', 'pending')",
                (policy_id, number),
            ).rowcount
            if changed != 1:
                raise StaleState(f"{policy_id}@{number} is neither a draft nor pending")
            detail = {"message": message}
            _audit(session, stamp, principal, "reject", policy_id, number, detail)
            self.backend.bump(session, REVISIONS)
        found = self.record(policy_id, number)
        assert found is not None
        return found

    def publish(
        self,
        policy_id: str,
        number: int,
        *,
        principal: str,
        kind: str,
        message: str,
        from_states: tuple[str, ...],
        expect_published: int | bool | None = False,
        approver: str | None = None,
    ) -> Publication:
        """Make revision `number` the one served: a new publication row, the previous
        published revision retired, its audit row and the 'policies' generation bumped, in one
        transaction. `expect_published`: the number that must still be the published one
        (None: nothing may be published yet; False: no check), else StaleState."""
        stamp = now_ms()
        with self.backend.write(_key(policy_id)) as session:
            row = session.execute(
                "SELECT revision, state FROM lifecycle_revisions WHERE policy_id = ? "
                "AND number = ?",
                (policy_id, number),
            ).fetchone()
            if row is None or row[1] not in from_states:
                state = row[1] if row else "absent"
                raise StaleState(f"{policy_id}@{number} is {state}")
            current = session.execute(
                "SELECT number FROM publications WHERE policy_id = ? ORDER BY id DESC LIMIT 1",
                (policy_id,),
            ).fetchone()
            current_number = current[0] if current else None
            if expect_published is not False and current_number != expect_published:
                raise StaleState(
                    f"{policy_id}: the published revision is now "
                    f"{current_number if current_number is not None else 'none'}"
                )
            return self._publish_in(
                session,
                policy_id,
                number,
                row[0],
                current_number,
                principal=principal,
                kind=kind,
                message=message,
                approver=approver,
                stamp=stamp,
            )

    def _publish_in(
        self,
        session: Session,
        policy_id: str,
        number: int,
        revision: str,
        previous: int | None,
        *,
        principal: str,
        kind: str,
        message: str,
        approver: str | None,
        stamp: int,
    ) -> Publication:
        """Inside a write keyed on the policy, checks done: retire the published record,
        publish `number`, the publication row, its audit row, both generations bumped."""
        session.execute(
            "UPDATE lifecycle_revisions SET state = 'retired' WHERE policy_id = ? "
            "AND state = 'published'",
            (policy_id,),
        )
        session.execute(
            "UPDATE lifecycle_revisions SET state = 'published', "
            "approver = COALESCE(?, approver), approved_at = COALESCE(?, approved_at) "
            "WHERE policy_id = ? AND number = ?",
            (approver, stamp if approver else None, policy_id, number),
        )
        inserted = session.execute(
            "INSERT INTO publications (policy_id, number, revision, kind, principal, "
            "published_at, message) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (policy_id, number, revision, kind, principal, stamp, message),
        ).fetchone()
        publication_id = int(inserted[0])
        detail = {
            "publication": publication_id,
            "revision": revision,
            "previous": previous,
            "kind": kind,
            "message": message,
        }
        action = {"approval": "approve"}.get(kind, kind)
        _audit(session, stamp, principal, action, policy_id, number, detail)
        self.backend.bump(session, POLICIES)
        self.backend.bump(session, REVISIONS)
        return Publication(
            publication_id, policy_id, number, revision, kind, principal, stamp, message
        )

    def set_impact(self, policy_id: str, number: int, impact: Mapping[str, Any]) -> None:
        with self.backend.write(_key(policy_id)) as session:
            session.execute(
                "UPDATE lifecycle_revisions SET impact = ? WHERE policy_id = ? AND number = ?",
                (_json(impact), policy_id, number),
            )
            self.backend.bump(session, REVISIONS)

    # -- settings the service records for every user of the store ---------------------
    def setting(self, name: str) -> str | None:
        row = self._row("SELECT value FROM lifecycle_settings WHERE name = ?", (name,))
        return str(row[0]) if row else None

    def set_setting(self, name: str, value: str) -> None:
        with self.backend.write() as session:
            session.execute(
                "INSERT INTO lifecycle_settings (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value),
            )

    # -- watch mode: the last revision served ------------------------------------------
    def note_served(self, policy_id: str, revision: str) -> None:
        with self.backend.write() as session:
            session.execute(
                "INSERT INTO watch_served (policy_id, revision, served_at) VALUES (?, ?, ?) "
                "ON CONFLICT (policy_id) DO UPDATE SET revision = excluded.revision, "
                "served_at = excluded.served_at",
                (policy_id, revision, now_ms()),
            )

    def last_served(self, policy_id: str) -> str | None:
        row = self._row("SELECT revision FROM watch_served WHERE policy_id = ?", (policy_id,))
        return str(row[0]) if row else None

    # -- jobs --------------------------------------------------------------------------
    def start_job(
        self,
        kind: str,
        policy_id: str,
        principal: str,
        params: Mapping[str, Any],
        *,
        stale_after_ms: int = 30_000,
    ) -> Job:
        """A running job; JobBusy with the running one if the policy has one. A job whose
        process stopped beating for `stale_after_ms` is marked failed first."""
        stamp = now_ms()
        job_id = f"{stamp:x}{os.urandom(4).hex()}"
        with self.backend.write(_key(policy_id)) as session:
            session.execute(
                "UPDATE jobs SET state = 'failed', active = NULL, finished_at = ?, "
                "error = ? WHERE active = ? AND heartbeat < ?",
                (
                    stamp,
                    _json({"code": "job_abandoned", "message": "the job's process stopped"}),
                    policy_id,
                    stamp - stale_after_ms,
                ),
            )
            running = session.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE active = ?", (policy_id,)
            ).fetchone()
            if running is not None:
                raise JobBusy(_job(running))
            session.execute(
                f"INSERT INTO jobs ({_JOB_COLUMNS}, active) "
                "VALUES (?, ?, ?, 'running', ?, ?, ?, NULL, ?, 0, NULL, ?, NULL, NULL, 0, ?)",
                (
                    job_id,
                    kind,
                    policy_id,
                    principal,
                    stamp,
                    stamp,
                    stamp,
                    _json(dict(params)),
                    policy_id,
                ),
            )
            _audit(session, stamp, principal, kind, policy_id, None, {"job": job_id})
        job = self.job(job_id)
        assert job is not None
        return job

    def job(self, job_id: str) -> Job | None:
        row = self._row(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        return _job(row) if row else None

    def jobs(self, policy_id: str | None = None, limit: int = 50) -> list[Job]:
        if policy_id is None:
            rows = self._rows(
                f"SELECT {_JOB_COLUMNS} FROM jobs ORDER BY created_at DESC LIMIT ?", (limit,)
            )
        else:
            rows = self._rows(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE policy_id = ? "
                "ORDER BY created_at DESC LIMIT ?",
                (policy_id, limit),
            )
        return [_job(r) for r in rows]

    def job_progress(self, job_id: str, done: int, total: int | None) -> bool:
        """Record progress and beat; True when a cancel was requested."""
        with self.backend.write() as session:
            session.execute(
                "UPDATE jobs SET done = ?, total = ?, heartbeat = ? WHERE id = ?",
                (done, total, now_ms(), job_id),
            )
            row = session.execute(
                "SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
        return bool(row and row[0])

    def finish_job(
        self,
        job_id: str,
        state: str,
        *,
        report: Mapping[str, Any] | None = None,
        error: Any = None,
    ) -> None:
        if state not in ("done", "failed", "cancelled"):
            raise ValueError(state)
        stamp = now_ms()
        with self.backend.write() as session:
            ended = session.execute(
                "UPDATE jobs SET state = ?, active = NULL, finished_at = ?, heartbeat = ?, "
                "report = ?, error = ? WHERE id = ? AND state = 'running'",
                (state, stamp, stamp, _json(report), _json(error), job_id),
            ).rowcount
            if ended and state != "done":
                # the trail said "submit" when the job began: it says how a submission that
                # stored nothing ended, so that it does not read as one that was made
                row = session.execute(
                    "SELECT kind, policy_id, principal FROM jobs WHERE id = ?", (job_id,)
                ).fetchone()
                if row is not None and row[0] == "submit":
                    detail = {"job": job_id}
                    if isinstance(error, Mapping) and error.get("code"):
                        detail["code"] = str(error["code"])
                    _audit(session, stamp, row[2], f"submit_{state}", row[1], None, detail)

    def cancel_job(self, job_id: str, principal: str) -> Job | None:
        """Ask a running job to stop (it does at its next progress report)."""
        with self.backend.write() as session:
            found = session.execute(
                "SELECT policy_id, state FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
            if found is None:
                return None
            if found[1] == "running":
                session.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
                _audit(session, now_ms(), principal, "cancel", found[0], None, {"job": job_id})
        return self.job(job_id)


def _key(policy_id: str) -> str:
    """What writers of one policy's records take turns on (PostgreSQL's advisory lock)."""
    return f"lifecycle:{policy_id}"


def newest_data_versions(published: Iterable[tuple[int, Mapping[str, str]]]) -> dict[str, str]:
    """The default version of each data set as the service serves it, from (publication
    id, its revision's data versions) of every published revision: that of the newest
    publication whose revision reads the set."""
    out: dict[str, tuple[int, str]] = {}
    for publication, data in published:
        for name, version in data.items():
            if name not in out or out[name][0] < publication:
                out[name] = (publication, version)
    return {name: version for name, (_, version) in out.items()}


def _audit(
    session: Session,
    stamp: int,
    principal: str,
    action: str,
    policy_id: str,
    number: int | None,
    detail: Mapping[str, Any],
) -> None:
    session.execute(
        "INSERT INTO audit_log (at, principal, action, policy_id, number, detail) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (stamp, principal, action, policy_id, number, orjson.dumps(dict(detail)).decode()),
    )
