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

This class is the narrow interface another backend implements (PostgreSQL): each write is
one transaction under the store's one write discipline (engine/store/sqlite.py), with its
audit row and its generation bump inside it; the SQL is portable (`?` placeholders,
INSERT ... ON CONFLICT, no functions of one database). Rules of the lifecycle (who may
approve what) are engine/lifecycle's; this class only refuses what would break the
records (`StaleState`: the row is not in the state the caller read).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from engine.store import sqlite, versions
from engine.store.sqlite import WriteLock, transaction

COMPONENT = "lifecycle"
MIGRATIONS = [
    """
    CREATE TABLE lifecycle_revisions (
        policy_id TEXT NOT NULL,
        number INTEGER NOT NULL,
        revision TEXT NOT NULL,
        state TEXT NOT NULL,
        base INTEGER,
        author TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        message TEXT NOT NULL,
        data TEXT NOT NULL,
        tests_source TEXT,
        tests TEXT,
        impact TEXT,
        approver TEXT,
        approved_at INTEGER,
        PRIMARY KEY (policy_id, number)
    );
    CREATE TABLE publications (
        id INTEGER PRIMARY KEY,
        policy_id TEXT NOT NULL,
        number INTEGER NOT NULL,
        revision TEXT NOT NULL,
        kind TEXT NOT NULL,
        principal TEXT NOT NULL,
        published_at INTEGER NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX publications_by_policy ON publications (policy_id, id);
    CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
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
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER,
        heartbeat INTEGER NOT NULL,
        done INTEGER NOT NULL,
        total INTEGER,
        params TEXT NOT NULL,
        report TEXT,
        error TEXT,
        cancel_requested INTEGER NOT NULL
    );
    CREATE INDEX jobs_by_policy ON jobs (policy_id, created_at);
    CREATE TABLE watch_served (
        policy_id TEXT PRIMARY KEY,
        revision TEXT NOT NULL,
        served_at INTEGER NOT NULL
    );
    CREATE TABLE lifecycle_settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )
    """,
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
    return None if value is None else orjson.dumps(value).decode()


def _loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


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
        orjson.loads(row[11]),
        _loads(row[12]),
        _loads(row[13]),
        bool(row[14]),
    )


class RevisionStore:
    """Revision records, publications, the audit trail and jobs, in the store's file."""

    def __init__(self, path: str | Path, lock: WriteLock | None = None) -> None:
        self.path = Path(path)
        self._own_lock = lock is None
        self.lock = lock or WriteLock(self.path)
        self.conn = sqlite.connect(self.path)
        # the generations table is the service store's (versions.py): it must exist first
        sqlite.migrate(self.conn, self.lock, versions.COMPONENT, versions.MIGRATIONS)
        sqlite.migrate(self.conn, self.lock, COMPONENT, MIGRATIONS)

    def close(self) -> None:
        self.conn.close()
        if self._own_lock:
            self.lock.close()

    # -- reads ---------------------------------------------------------------------------
    def generations(self) -> dict[str, int]:
        """Every counter workers poll: 'policies', 'revisions' (and 'data')."""
        return dict(self.conn.execute("SELECT name, value FROM generations").fetchall())

    def published(self) -> dict[str, Publication]:
        """The publication each policy serves now: its newest."""
        rows = self.conn.execute(
            f"SELECT {_PUBLICATION_COLUMNS} FROM publications WHERE id IN "
            "(SELECT MAX(id) FROM publications GROUP BY policy_id)"
        )
        return {row[1]: _publication(row) for row in rows}

    def publication_of(self, policy_id: str) -> Publication | None:
        row = self.conn.execute(
            f"SELECT {_PUBLICATION_COLUMNS} FROM publications WHERE policy_id = ? "
            "ORDER BY id DESC LIMIT 1",
            (policy_id,),
        ).fetchone()
        return _publication(row) if row else None

    def publications(self, policy_id: str, limit: int = 100) -> list[Publication]:
        rows = self.conn.execute(
            f"SELECT {_PUBLICATION_COLUMNS} FROM publications WHERE policy_id = ? "
            "ORDER BY id DESC LIMIT ?",
            (policy_id, limit),
        )
        return [_publication(r) for r in rows]

    def has_publications(self) -> bool:
        return self.conn.execute("SELECT 1 FROM publications LIMIT 1").fetchone() is not None

    def record(self, policy_id: str, number: int) -> RevisionRecord | None:
        row = self.conn.execute(
            f"SELECT {_REVISION_COLUMNS} FROM lifecycle_revisions "
            "WHERE policy_id = ? AND number = ?",
            (policy_id, number),
        ).fetchone()
        return _revision(row) if row else None

    def records(
        self, policy_id: str, states: Iterable[str] | None = None, limit: int = 200
    ) -> list[RevisionRecord]:
        """A policy's revision records, newest first."""
        wanted = list(states or ())
        where = "policy_id = ?"
        if wanted:
            where += f" AND state IN ({', '.join('?' for _ in wanted)})"
        rows = self.conn.execute(
            f"SELECT {_REVISION_COLUMNS} FROM lifecycle_revisions WHERE {where} "
            "ORDER BY number DESC LIMIT ?",
            (policy_id, *wanted, limit),
        )
        return [_revision(r) for r in rows]

    def records_by_hash(self, policy_id: str, revision: str) -> list[RevisionRecord]:
        rows = self.conn.execute(
            f"SELECT {_REVISION_COLUMNS} FROM lifecycle_revisions "
            "WHERE policy_id = ? AND revision = ? ORDER BY number DESC",
            (policy_id, revision),
        )
        return [_revision(r) for r in rows]

    def policy_ids(self) -> list[str]:
        rows = self.conn.execute("SELECT DISTINCT policy_id FROM lifecycle_revisions")
        return sorted(r[0] for r in rows)

    def pending(self) -> dict[str, RevisionRecord]:
        """The newest pending revision of each policy that has one."""
        rows = self.conn.execute(
            f"SELECT {_REVISION_COLUMNS} FROM lifecycle_revisions WHERE state = 'pending' "
            "ORDER BY policy_id, number"
        )
        return {r.policy_id: r for r in map(_revision, rows)}

    def audit(
        self, policy_id: str | None = None, limit: int = 100, before: int | None = None
    ) -> list[AuditEntry]:
        where, args = [], []
        if policy_id is not None:
            where.append("policy_id = ?")
            args.append(policy_id)
        if before is not None:
            where.append("seq < ?")
            args.append(before)
        sql = "SELECT seq, at, principal, action, policy_id, number, detail FROM audit_log"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self.conn.execute(sql + " ORDER BY seq DESC LIMIT ?", (*args, limit))
        return [AuditEntry(*r[:6], orjson.loads(r[6])) for r in rows]

    # -- writes: revision records -------------------------------------------------------
    def add(self, new: NewRevision) -> RevisionRecord:
        """A new record numbered after the policy's last; audited as its state."""
        if new.state not in ("draft", "pending"):
            raise ValueError(f"a new revision is a draft or pending, not {new.state}")
        stamp = now_ms()
        with transaction(self.conn, self.lock) as conn:
            row = conn.execute(
                "SELECT MAX(number) FROM lifecycle_revisions WHERE policy_id = ?",
                (new.policy_id,),
            ).fetchone()
            number = (row[0] or 0) + 1
            conn.execute(
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
            self._audit(conn, stamp, new.author, action, new.policy_id, number, detail)
            self._bump(conn, REVISIONS)
        found = self.record(new.policy_id, number)
        assert found is not None
        return found

    def submit(
        self,
        policy_id: str,
        number: int,
        principal: str,
        *,
        base: int | None,
        tests: Mapping[str, Any] | None,
        impact: Mapping[str, Any] | None,
    ) -> RevisionRecord:
        """A draft becomes pending, with its tests, its impact and the base they were run on."""
        stamp = now_ms()
        with transaction(self.conn, self.lock) as conn:
            changed = conn.execute(
                "UPDATE lifecycle_revisions SET state = 'pending', base = ?, tests = ?, "
                "impact = ? WHERE policy_id = ? AND number = ? AND state = 'draft'",
                (base, _json(tests), _json(impact), policy_id, number),
            ).rowcount
            if changed != 1:
                raise StaleState(f"{policy_id}@{number} is not a draft")
            detail = {"base": base}
            self._audit(conn, stamp, principal, "submit", policy_id, number, detail)
            self._bump(conn, REVISIONS)
        found = self.record(policy_id, number)
        assert found is not None
        return found

    def reject(self, policy_id: str, number: int, principal: str, message: str) -> RevisionRecord:
        stamp = now_ms()
        with transaction(self.conn, self.lock) as conn:
            changed = conn.execute(
                "UPDATE lifecycle_revisions SET state = 'rejected' WHERE policy_id = ? "
                "AND number = ? AND state IN ('draft', 'pending')",
                (policy_id, number),
            ).rowcount
            if changed != 1:
                raise StaleState(f"{policy_id}@{number} is neither a draft nor pending")
            detail = {"message": message}
            self._audit(conn, stamp, principal, "reject", policy_id, number, detail)
            self._bump(conn, REVISIONS)
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
        with transaction(self.conn, self.lock) as conn:
            row = conn.execute(
                "SELECT revision, state FROM lifecycle_revisions WHERE policy_id = ? "
                "AND number = ?",
                (policy_id, number),
            ).fetchone()
            if row is None or row[1] not in from_states:
                state = row[1] if row else "absent"
                raise StaleState(f"{policy_id}@{number} is {state}")
            current = conn.execute(
                "SELECT number FROM publications WHERE policy_id = ? ORDER BY id DESC LIMIT 1",
                (policy_id,),
            ).fetchone()
            current_number = current[0] if current else None
            if expect_published is not False and current_number != expect_published:
                raise StaleState(
                    f"{policy_id}: the published revision is now "
                    f"{current_number if current_number is not None else 'none'}"
                )
            conn.execute(
                "UPDATE lifecycle_revisions SET state = 'retired' WHERE policy_id = ? "
                "AND state = 'published'",
                (policy_id,),
            )
            conn.execute(
                "UPDATE lifecycle_revisions SET state = 'published', "
                "approver = COALESCE(?, approver), approved_at = COALESCE(?, approved_at) "
                "WHERE policy_id = ? AND number = ?",
                (approver, stamp if approver else None, policy_id, number),
            )
            cursor = conn.execute(
                "INSERT INTO publications (policy_id, number, revision, kind, principal, "
                "published_at, message) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (policy_id, number, row[0], kind, principal, stamp, message),
            )
            publication_id = cursor.lastrowid
            detail = {
                "publication": publication_id,
                "revision": row[0],
                "previous": current_number,
                "kind": kind,
                "message": message,
            }
            action = {"approval": "approve"}.get(kind, kind)
            self._audit(conn, stamp, principal, action, policy_id, number, detail)
            self._bump(conn, POLICIES)
            self._bump(conn, REVISIONS)
        assert publication_id is not None
        return Publication(
            publication_id, policy_id, number, row[0], kind, principal, stamp, message
        )

    def set_impact(self, policy_id: str, number: int, impact: Mapping[str, Any]) -> None:
        with transaction(self.conn, self.lock) as conn:
            conn.execute(
                "UPDATE lifecycle_revisions SET impact = ? WHERE policy_id = ? AND number = ?",
                (_json(impact), policy_id, number),
            )
            self._bump(conn, REVISIONS)

    # -- settings the service records for every user of the store ---------------------
    def setting(self, name: str) -> str | None:
        row = self.conn.execute(
            "SELECT value FROM lifecycle_settings WHERE name = ?", (name,)
        ).fetchone()
        return str(row[0]) if row else None

    def set_setting(self, name: str, value: str) -> None:
        with transaction(self.conn, self.lock) as conn:
            conn.execute(
                "INSERT INTO lifecycle_settings (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value),
            )

    # -- watch mode: the last revision served ------------------------------------------
    def note_served(self, policy_id: str, revision: str) -> None:
        with transaction(self.conn, self.lock) as conn:
            conn.execute(
                "INSERT INTO watch_served (policy_id, revision, served_at) VALUES (?, ?, ?) "
                "ON CONFLICT (policy_id) DO UPDATE SET revision = excluded.revision, "
                "served_at = excluded.served_at",
                (policy_id, revision, now_ms()),
            )

    def last_served(self, policy_id: str) -> str | None:
        row = self.conn.execute(
            "SELECT revision FROM watch_served WHERE policy_id = ?", (policy_id,)
        ).fetchone()
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
        with transaction(self.conn, self.lock) as conn:
            conn.execute(
                "UPDATE jobs SET state = 'failed', active = NULL, finished_at = ?, "
                "error = ? WHERE active = ? AND heartbeat < ?",
                (
                    stamp,
                    _json({"code": "job_abandoned", "message": "the job's process stopped"}),
                    policy_id,
                    stamp - stale_after_ms,
                ),
            )
            running = conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE active = ?", (policy_id,)
            ).fetchone()
            if running is not None:
                raise JobBusy(_job(running))
            conn.execute(
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
            self._audit(conn, stamp, principal, kind, policy_id, None, {"job": job_id})
        job = self.job(job_id)
        assert job is not None
        return job

    def job(self, job_id: str) -> Job | None:
        row = self.conn.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
        return _job(row) if row else None

    def jobs(self, policy_id: str | None = None, limit: int = 50) -> list[Job]:
        if policy_id is None:
            rows = self.conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs ORDER BY created_at DESC LIMIT ?", (limit,)
            )
        else:
            rows = self.conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE policy_id = ? "
                "ORDER BY created_at DESC LIMIT ?",
                (policy_id, limit),
            )
        return [_job(r) for r in rows]

    def job_progress(self, job_id: str, done: int, total: int | None) -> bool:
        """Record progress and beat; True when a cancel was requested."""
        with transaction(self.conn, self.lock) as conn:
            conn.execute(
                "UPDATE jobs SET done = ?, total = ?, heartbeat = ? WHERE id = ?",
                (done, total, now_ms(), job_id),
            )
            row = conn.execute(
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
        with transaction(self.conn, self.lock) as conn:
            conn.execute(
                "UPDATE jobs SET state = ?, active = NULL, finished_at = ?, heartbeat = ?, "
                "report = ?, error = ? WHERE id = ? AND state = 'running'",
                (state, stamp, stamp, _json(report), _json(error), job_id),
            )

    def cancel_job(self, job_id: str, principal: str) -> Job | None:
        """Ask a running job to stop (it does at its next progress report)."""
        with transaction(self.conn, self.lock) as conn:
            row = conn.execute("SELECT policy_id, state FROM jobs WHERE id = ?", (job_id,))
            found = row.fetchone()
            if found is None:
                return None
            if found[1] == "running":
                conn.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
                self._audit(conn, now_ms(), principal, "cancel", found[0], None, {"job": job_id})
        return self.job(job_id)

    # -- helpers ------------------------------------------------------------------------
    @staticmethod
    def _audit(
        conn: Any,
        stamp: int,
        principal: str,
        action: str,
        policy_id: str,
        number: int | None,
        detail: Mapping[str, Any],
    ) -> None:
        conn.execute(
            "INSERT INTO audit_log (at, principal, action, policy_id, number, detail) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (stamp, principal, action, policy_id, number, orjson.dumps(dict(detail)).decode()),
        )

    @staticmethod
    def _bump(conn: Any, name: str) -> None:
        conn.execute(
            "INSERT INTO generations (name, value) VALUES (?, 1) "
            "ON CONFLICT (name) DO UPDATE SET value = generations.value + 1",
            (name,),
        )
