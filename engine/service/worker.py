"""An engine worker process: decides, logs in groups, reloads policies; one per slot.

    python -m engine.service.worker FD SLOT

(started by engine/service/pool.py; config in $KIMARI_WORKER)

One thread decides: it reads every request frame that has arrived and decides each
(durable_rules is called from this thread only). All their log entries are then written in
one transaction (one fsync: group commit) and only then are the replies sent. Groups grow
with the load, so durability costs one fsync per group, not per decision. No reply of a
decision leaves before its log entry is committed: an acknowledged decision is never lost.

Where a group is committed depends on how long commits take. While they are quick (under
`commit_inline_below_ms`, an fsync of a fast disk), the deciding thread commits the group
itself and then reads the next: no hand-off between threads, no GIL passed to and fro
around every SQLite call. Once a commit is slow (a slow disk, or another process holding
the store's write lock), the groups go to the committer thread, which writes them while the
deciding thread decides the next group, so that the fsync overlaps deciding; every
PROBE_EVERY-th group is committed on the deciding thread again, to notice that commits got
quick. Measured both ways in docs/benchmarks.md ("where the commit runs").

A reloader thread watches what is served: the store's publications (it polls the store's
'policies' generation, which every publication bumps), or with `kimari serve --watch` the
policy files' mtimes. It compiles and registers what changed in the background and hands
the result to the deciding thread, which swaps it in between two groups (one revision per
policy at a time) and closes the revisions no longer served. Files are fingerprinted before
each compile: a save made during a compile is compiled right after it, and every refused
save is reported (a reload event: the front logs it at WARNING and counts it).

Lifecycle requests (drafts, approvals, diffs; engine/service/lifecycle.py) run on a thread
of their own (engine/service/request_thread.py), one at a time; replays run as jobs in
processes of their own. Data set changes
(`PUT`/`DELETE /v1/data/{name}`, and those made through other workers) are checked and
indexed on a data thread (engine/service/data_builds.py), swapped in like a reload.

If this process dies (a durable_rules segfault), the front answers the requests it had
sent here with a retriable 503 and starts a new worker in this slot.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import re
import select
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from engine.compile.model import CompiledPolicy
from engine.core.errors import EngineFault, PolicyError, StoreUnavailable
from engine.core.i18n import Msg, translate, using_language
from engine.core.jsonvalue import dumps
from engine.lifecycle.workflow import Rules
from engine.project.project import policy_files, shown_path
from engine.project.registry import (
    Fingerprint,
    PolicySet,
    Snapshot,
    apply_data,
    compile_published,
    compile_set,
    deps,
    fingerprint,
    reload_events,
    retired,
    store_generation,
)
from engine.service import ipc, routes
from engine.service.data_builds import DataBuilds, Job, numbered
from engine.service.decisions import Pending, Service, json_response
from engine.service.envelopes import DECISION_ID
from engine.service.flows import FlowService
from engine.service.ipc import DATA_OPS, Event, Op
from engine.service.lifecycle import LifecycleService
from engine.service.problems import (
    DECISION,
    Response,
    from_error,
    internal_error,
    problem,
    unavailable,
)
from engine.service.reads import Reads
from engine.service.request_thread import RequestThread
from engine.store.backend import MEMORY, SQLITE, open_backend, parse_location
from engine.store.checks import Checks
from engine.store.decisions import DecisionLog, Logged
from engine.store.revisions import RevisionStore
from engine.store.sqlite import connect
from engine.store.versions import Store

log = logging.getLogger("kimari.worker")
_POLICY_FILE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")  # a policy id: a file name, never a path
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
READ_CHUNK, READ_TURN = 1 << 20, 64  # a turn of the reader takes 64 MiB at most
JSON_HEADERS = [(b"content-type", b"application/json")]
COMMIT_THREAD = "kimari-commit"  # the committer's name in /proc, top -H and py-spy
LIFECYCLE_THREAD = "kimari-lifecycle"  # the lifecycle's requests (engine/service/request_thread.py)
# the share of request_timeout an approval or a rollback waits for the deciding thread to
# serve what it published (it swaps between two groups of decisions; a store that cannot be
# read defers the swap): the front kills a worker that holds a request past request_timeout
SWAP_WAIT_SHARE = 0.25
# with slow commits, one group in this many is committed on the deciding thread all the same,
# to see whether commits are quick again
PROBE_EVERY = 64
Handler = Callable[[dict[str, Any], bytes], Response | Pending]


def _files_of(print_: Fingerprint) -> Fingerprint:
    return tuple(item for item in print_ if item[0] != "rulebook")


def _settle_heap() -> None:
    """Move what is loaded (compiled policies, data indexes) out of the collector's sight.

    A full collection walks every object alive: with the shipped policies loaded
    it took ~25 ms, and it came every thousand decisions or so, which made the p99
    latency. Objects loaded once and kept are frozen; a decision's own garbage is
    freed by reference counting as before. Called again after each reload, after
    a collection of what the swap released.
    """
    gc.collect()
    gc.freeze()


def _name_os_thread(name: str) -> None:
    """Linux: give the calling thread `name` (15 bytes at most) in /proc, top -H and py-spy.
    Elsewhere nothing happens."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, name.encode()[:15])  # PR_SET_NAME


class Worker:
    def __init__(self, sock: socket.socket, slot: int, config: dict[str, Any]) -> None:
        self.sock = sock
        self.slot = slot
        self.config = config
        self.folder = Path(config["policies"])
        self.watch = bool(config.get("watch"))
        # one backend for every component: on SQLite one WriteLock for all the writers of
        # this process, a connection per thread; on PostgreSQL one pool (the deciding
        # thread reads, the committer thread writes) and one listener of notifications
        self.backend = open_backend(config["store"])
        self.store = Store(self.backend)
        self.revisions = RevisionStore(self.backend)  # publications, revision records
        self.decision_log = DecisionLog(self.backend)
        self.send_lock = threading.Lock()
        self.groups: deque[list[tuple[int, Pending]]] = deque()
        self.groups_ready = threading.Condition()
        self.stopping = False  # no more frames will come: commit what is queued, then stop
        self.committer: threading.Thread | None = None
        self.committing = False  # the committer holds groups it took (under groups_ready)
        self.reload_lock = threading.Lock()  # one compile at a time
        # set by the front's POLL: another worker served a new revision, look now instead
        # of at the end of this reload interval (the window of mixed answers shrinks to
        # about one compile)
        self.poll_now = threading.Event()
        self.handoff = threading.Lock()  # pending_set between the reloader and the decider
        self.pending_set: PolicySet | None = None
        self.pending_events: list[dict[str, Any]] = []  # of sets offered, not yet swapped in
        # sets offered are numbered: an approval answers once the deciding thread has swapped
        # in the one it offered, or a later one
        self.offers = 0
        self.pending_offer = 0
        self.swapped_offer = 0
        self.swapped = threading.Condition()
        self.generation = 0
        self.max_rows = int(config["commit_max_rows"])
        self.commit_wait = float(config["commit_wait_ms"]) / 1000.0
        # a wait to grow the groups is the committer's: no commit on the deciding thread then
        below = float(config.get("commit_inline_below_ms", 0.0)) / 1000.0
        self.inline_below = 0.0 if self.commit_wait else below
        self.inline = self.inline_below > 0  # the last commit here was quick (or none yet)
        self.since_probe = 0  # groups handed to the committer since the last commit here
        self.last_commit_s = 0.0  # how long the last transaction of the log took
        self.faults = (
            bool(config.get("test_faults")) and os.environ.get("KIMARI_TEST_FAULTS") == "1"
        )
        self.batch_counts = [0] * (len(BATCH_BUCKETS) + 1)
        self.commit_failures = 0
        # commits made on the deciding thread; CPU seconds of the commits and of the replies
        # after them, per thread (each written by its own thread only)
        self.inline_commits = 0
        self.inline_cpu = 0.0
        self.committer_cpu = 0.0
        self.remembered: set[tuple[str, str]] = set()
        self.wake_r, self.wake_w = os.pipe()
        self.out: list[bytes] = []
        self.hidden = _server_paths(self.folder)
        # schema checks any process of this store found clean (engine/source/memo.py)
        self.checks = Checks(self.backend)
        try:
            self.checks.load()
        except StoreUnavailable as exc:  # only slower: every check is made
            log.warning("remembered schema checks not read: %s", exc)
        with self.reload_lock:
            policy_set = self._compile(None)
        self._remember_checks()
        # the newest compiled set: every reload builds on it (its last good revisions), never
        # on the snapshot served, which may lag behind while a swap is under way
        self.latest_set = policy_set
        self.service = Service(
            self._snapshot(policy_set, None),
            self.decision_log,
            self.store,
            max_batch=int(config["max_batch"]),
        )
        # Flow events run on this same deciding thread (durable_rules has one owner) and
        # keep entity state in the same store, written in the same discipline.
        self.flows = FlowService(lambda: self.service.snapshot, self.backend)
        self.data = DataBuilds(
            self.store, lambda: self.service.snapshot, self._wake, self._answer_aside
        )
        self.service.on_data_change = self.data.prepare
        rules = Rules(
            approvals_required=int(config.get("approvals_required", 0)),
            impact_days=float(config.get("impact_days", 7.0)),
            impact_sample=int(config.get("impact_sample", 20_000)),
        )
        self.lifecycle = LifecycleService(
            config["store"],
            rules,
            (self.store, self.revisions),
            lambda: self.service.snapshot.policy_set.statuses,
        )
        self.reads = Reads(lambda: self.service.snapshot, self.decision_log, self.folder)
        self.editing = RequestThread(LIFECYCLE_THREAD, self._answer_aside)
        self.swap_wait = SWAP_WAIT_SHARE * float(config["request_timeout"])
        self.lifecycle_ops = frozenset(self._lifecycle_handlers())
        self.handlers = self._handlers()
        if self.handlers.keys() != routes.worker_ops():  # the table and this worker disagree
            raise RuntimeError(f"worker operations {sorted(self.handlers)} != the route table's")
        self._remember(self.service.snapshot)
        self._send_events(reload_events(None, policy_set))

    # -- what is served ----------------------------------------------------------------
    def _compile(self, previous: PolicySet | None, seen: Fingerprint | None = None) -> PolicySet:
        """The next set: the published revisions, or with --watch the files (`seen`: their
        fingerprint taken before this compile began)."""
        if self.watch:
            return compile_set(self.folder, previous, seen=seen, fallback=self._last_served)
        return compile_published(self.store, self.revisions, previous)

    def _remember_checks(self) -> None:
        """Keep the schema checks this compile found clean, for the next process: after the
        new set is offered, so that a publication's write waits for no other writer."""
        with self.reload_lock:
            if self.stopping:
                return
            try:
                self.checks.save()
            except Exception as exc:  # the store busy or full: the next compile saves them
                log.warning("schema checks not remembered: %s", exc)

    def _last_served(self, policy_id: str) -> CompiledPolicy | None:
        """--watch, a file that does not compile and nothing served yet (a restart): the last
        revision this policy served, from the store."""
        from engine.project.revisions import compile_stored

        revision = self.revisions.last_served(policy_id)
        if revision is None:
            return None
        try:
            policy = compile_stored(self.store, revision)
            policy.durable_handle()
        except (PolicyError, EngineFault) as exc:
            log.warning("policy %s: its last served revision %s: %s", policy_id, revision, exc)
            return None
        return policy

    # -- snapshots ---------------------------------------------------------------------
    def _snapshot(self, policy_set: PolicySet, previous: Snapshot | None) -> Snapshot:
        self.generation += 1
        # the counter before the versions: a replacement committed between the two reads
        # leaves the counter behind the versions, and the next group refreshes once more;
        # read after them, it said versions older than it were current until the next one
        data_generation = self.store.fresh_data_generation()
        return apply_data(
            policy_set,
            self.store.current_data(),
            self.store.version_entries,
            previous,
            self.generation,
            data_generation,
        )

    def _swap(self, snapshot: Snapshot) -> None:
        old = self.service.snapshot
        self.service.snapshot = snapshot
        self.data.served_changed()
        for policy in retired(old, snapshot):  # nothing decides with them any more
            try:
                policy.close()
            except Exception as exc:  # a failed unregister must not stop the service
                log.warning("closing %s@%s failed: %s", policy.id, policy.revision, exc)
        self._remember(snapshot)

    def _remember(self, snapshot: Snapshot) -> None:
        """Keep every policy revision's source and every file data version (replay needs them)."""
        try:
            for policy in snapshot.policies.values():
                if ("policy", policy.revision) in self.remembered:
                    continue
                if policy.source is not None:
                    self.store.remember_revision(
                        policy.id, policy.revision, policy.path, policy.source
                    )
                self.remembered.add(("policy", policy.revision))
            if self.watch:  # what a restart serves if its file is broken by then
                for pid, status in snapshot.policy_set.statuses.items():
                    policy = status.policy
                    if policy is None or status.errors or status.origin != "file":
                        continue
                    if ("served", pid, policy.revision) not in self.remembered:
                        self.revisions.note_served(pid, policy.revision)
                        self.remembered = {k for k in self.remembered if k[:2] != ("served", pid)}
                        self.remembered.add(("served", pid, policy.revision))
            for name, info in snapshot.data_info.items():
                if info.source == "file" and (name, info.version) not in self.remembered:
                    self.store.remember_data(
                        name, info.version, list(snapshot.datasets[name].entries)
                    )
                    self.remembered.add((name, info.version))
        except Exception as exc:  # the store being busy or full must not stop deciding
            log.warning("could not record policy sources or data versions: %s", exc)

    def _check_data(self) -> None:
        """Have the data sets another worker or replica replaced built (on the data thread):
        a counter compared per group (on PostgreSQL the one its notifications keep, no
        query). With the store unreachable, go on serving what is loaded: what needs the
        store answers 503."""
        try:
            generation = self.store.data_generation()
            if generation > self.service.snapshot.data_generation:
                self.data.want(generation)
        except StoreUnavailable as exc:
            log.warning("data sets not refreshed: %s", exc)

    def _take_data(self) -> None:
        """Serve the data sets the data thread built, unless a reload read newer ones."""
        built = self.data.take()
        if built is None:
            return
        try:
            self._swap_data(*built)
        finally:
            self.data.taken()

    def _swap_data(self, snapshot: Snapshot, current: Mapping[str, tuple[str, int]]) -> None:
        served = self.service.snapshot
        if snapshot.data_generation <= served.data_generation:
            return
        if snapshot.policy_set is not served.policy_set:  # a reload came in between
            try:
                snapshot = self.data.rebuild(snapshot, current)
            except Exception as exc:  # the data thread builds it again (it waits for it)
                log.warning("data sets not refreshed: %s", exc)
                self.data.ask_again()  # the next group asks again
                return
        self.generation += 1
        self._swap(numbered(snapshot, self.generation))

    def _wake(self) -> None:
        os.write(self.wake_w, b"d")

    def _take_reload(self) -> None:
        with self.handoff:  # never reload_lock here: a compile may hold it for a while
            new, self.pending_set = self.pending_set, None
            events, self.pending_events = self.pending_events, []
            offer = self.pending_offer
        if new is None:
            return
        old = self.service.snapshot
        try:
            snapshot = self._snapshot(new, old)
        except StoreUnavailable as exc:  # data versions unreadable now: swap it in later
            log.warning("policy reload waits for the store: %s", exc)
            with self.handoff:
                if self.pending_set is None:
                    self.pending_set = new
                self.pending_events[:0] = events  # still to be reported, first
            return
        self._swap(snapshot)
        self._send_events(events)
        if offer > self.swapped_offer:  # an approval may answer now: its reload event first
            self._flush()
            with self.swapped:
                self.swapped_offer = offer
                self.swapped.notify_all()
        _settle_heap()

    def _offer(self, new: PolicySet) -> None:
        """Make `new` the next set to swap in (called holding reload_lock). A set compiled
        earlier but never swapped in is dropped, and the rulesets only it registered closed;
        its events (a refused save) are kept: every one is reported."""
        events = reload_events(self.latest_set, new)
        with self.handoff:
            skipped, self.pending_set, self.latest_set = self.pending_set, new, new
            self.pending_events.extend(events)
            self.offers += 1
            self.pending_offer = self.offers
        if skipped is None:
            return
        keep = {id(p) for p in new.serving.values()}
        for status in skipped.statuses.values():
            policy = status.policy
            if policy is not None and not status.errors and id(policy) not in keep:
                policy.close()  # compiled for `skipped` only: nothing ever decided with it

    def reload_now(self) -> Response:
        with self.reload_lock:
            self._offer(self._compile(self.latest_set))
        self._take_reload()
        self._remember_checks()
        return self.service.list_policies()

    def _reloader(self) -> None:
        interval = float(self.config["reload_interval"])
        while True:
            self.poll_now.wait(interval)
            self.poll_now.clear()
            try:
                with self.reload_lock:  # the connections it polls with: closed at the stop
                    if self.stopping:
                        return
                    current = self._files_moved() if self.watch else self._store_moved()
                if current is not None:
                    if self.watch:
                        self._follow_files(interval, current)
                    else:
                        self._follow_store()
            except Exception:  # keep polling: the next edit may fix whatever broke here
                log.exception("policy reload failed")

    def _store_moved(self) -> Fingerprint | None:
        generation = store_generation(self.revisions)
        return generation if generation != self.latest_set.fingerprint else None

    def _files_moved(self) -> Fingerprint | None:
        seen = fingerprint(self.folder, deps(self.latest_set.specs))
        return seen if seen != _files_of(self.latest_set.fingerprint) else None

    def _follow_store(self) -> None:
        """A publication (or any change of a revision record) since the set was compiled."""
        with self.reload_lock:
            if self.stopping:
                return
            self._offer(self._compile(self.latest_set))
        os.write(self.wake_w, b"r")
        self._remember_checks()

    def _follow_files(self, interval: float, seen: Fingerprint) -> None:
        """Compile until the files are as compiled: the fingerprint is taken before each
        compile, so a save made during one is compiled by the next turn of this loop."""
        step = min(0.1, interval)
        while True:
            watched = deps(self.latest_set.specs)
            for _ in range(10):  # an editor may still be writing: wait until it settles
                time.sleep(step)
                settled = fingerprint(self.folder, watched)
                if settled == seen:
                    break
                seen = settled
            with self.reload_lock:
                if self.stopping:
                    return
                self._offer(self._compile(self.latest_set, seen))
            os.write(self.wake_w, b"r")
            self._remember_checks()
            with self.reload_lock:
                moved = None if self.stopping else self._files_moved()
            if moved is None:
                return
            seen = moved

    # -- frames ------------------------------------------------------------------------
    def _send_events(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            event["slot"] = self.slot
            self.out.append(ipc.encode(ipc.EVENT_ID, Event.RELOAD, event))
        self._flush()

    def _flush(self) -> None:
        if self.out:
            data = b"".join(self.out)
            self.out.clear()
            with self.send_lock:
                self.sock.sendall(data)

    def _frame(
        self, frame_id: int, response: Response, meta: dict[str, Any] | None = None
    ) -> bytes:
        status, headers, body = response
        for prefix in self.hidden:  # a client learns where a file sits in the project, no more
            if prefix in body:
                body = body.replace(prefix, b"")
        out = dict(meta or {})
        if headers != JSON_HEADERS:
            out["h"] = [[k.decode(), v.decode()] for k, v in headers]
        if status >= 400:
            out["c"] = orjson.loads(body).get("code")
        return ipc.encode(frame_id, status, out or None, body)

    def _fault(self, meta: dict[str, Any]) -> None:
        """Test-only: die or hang mid-request, as a durable_rules crash would; or raise, as a
        bug of ours would (which must cost the request, not the worker)."""
        kind = meta.get("fault") if self.faults else None
        if kind == "raise":
            raise RuntimeError("an injected fault")
        if kind == "exit":
            os._exit(70)
        elif kind == "segv":
            os.kill(os.getpid(), signal.SIGSEGV)
        elif kind == "hang":
            time.sleep(3600)
        elif kind == "slow":  # a request that takes its time (a big data set, say)
            time.sleep(2.0)

    def _handlers(self) -> dict[Op, Handler]:
        """One handler per worker operation of the route table (engine/service/routes.py);
        each reads the path parameters the front put in `meta` under the table's names.
        DATA_OPS run on the data thread."""
        service, flows, reads = self.service, self.flows, self.reads
        return {
            Op.DECIDE: self._decide,
            Op.BATCH: lambda meta, body: service.batch(meta["policy"], body),
            Op.GET_DECISION: lambda meta, _: self._get_decision(meta["decision_id"]),
            Op.POLICIES: lambda _meta, _body: self._list_policies(),
            Op.POLICY: lambda meta, _: self._unpublished_hint(
                service.get_policy(meta["policy_id"]), meta["policy_id"]
            ),
            Op.GET_DATA: lambda meta, _: service.get_data(meta["name"]),
            Op.PUT_DATA: self._put_data,
            Op.DELETE_DATA: self._reset_data,
            Op.DATA_SYNC: self._sync_data,
            Op.OPENAPI: lambda _meta, _body: self._openapi(),
            Op.POLL: lambda _meta, _body: self._poll(),
            Op.RELOAD: lambda _meta, _body: self.reload_now(),
            Op.STATS: lambda _meta, _body: json_response(200, self.stats()),
            Op.FLOW_EVENT: lambda meta, body: self._unpublished_hint(
                flows.event(meta["policy"], meta["entity_id"], body, meta.get("roles")),
                meta["policy"],
            ),
            Op.FLOW_ENTITY: lambda meta, _: flows.entity(meta["policy"], meta["entity_id"]),
            Op.FLOW_IMPORT: lambda meta, body: flows.import_entity(
                meta["policy"], meta["entity_id"], body, meta.get("principal", "anonymous")
            ),
            Op.FLOW_HISTORY: lambda meta, _: flows.history(
                meta["policy"], meta["entity_id"], bool(meta.get("refusals")), meta
            ),
            Op.LIST_DECISIONS: lambda meta, _: reads.list_decisions(meta),
            Op.LIST_DATA: lambda _meta, _body: reads.list_data(),
            Op.POLICY_SOURCE: lambda meta, _: reads.policy_source(meta["policy_id"]),
            Op.POLICY_EXAMPLES: lambda meta, _: reads.policy_examples(meta["policy_id"]),
            Op.POLICY_STATS: lambda meta, _: reads.policy_stats(meta["policy_id"], meta),
            Op.DATA_VERSIONS: lambda meta, _: reads.data_versions(meta["name"], self.store, meta),
            **self._lifecycle_handlers(),
        }

    def _lifecycle_handlers(self) -> dict[Op, Handler]:
        lifecycle = self.lifecycle
        return {
            Op.REVISIONS: lifecycle.revisions,
            Op.CREATE_REVISION: lifecycle.create,
            Op.REVISION: lifecycle.revision,
            Op.SUBMIT_REVISION: lifecycle.submit,
            Op.APPROVE_REVISION: self._approve,
            Op.REJECT_REVISION: lifecycle.reject,
            Op.ROLLBACK: self._rollback,
            Op.DIFF: lifecycle.diff,
            Op.IMPACT: lifecycle.impact,
            Op.JOBS: lifecycle.jobs,
            Op.JOB: lifecycle.job,
            Op.CANCEL_JOB: lifecycle.cancel,
            Op.AUDIT: lifecycle.audit,
            Op.AUDIT_ALL: lifecycle.audit,
            Op.VALIDATE_DRAFT: lifecycle.validate,
            Op.TEST_DRAFT: lifecycle.run_tests,
        }

    def _approve(self, meta: dict[str, Any], body: bytes) -> Response:
        """Approve; on success, this worker serves the publication before it answers (the
        others within a reload interval: see docs/lifecycle.md). With --watch the
        publication is recorded in the store but not served: the answer says so."""
        self._fault(meta)  # test mode: an approval that takes its time
        answer = self.lifecycle.approve(meta, body)
        if answer[0] == 200:
            answer = self._not_served(answer) if self.watch else self._served(answer)
        return answer

    def _rollback(self, meta: dict[str, Any], body: bytes) -> Response:
        answer = self.lifecycle.rollback(meta, body)
        if answer[0] == 200:
            answer = self._not_served(answer) if self.watch else self._served(answer)
        return answer

    def _served(self, answer: Response) -> Response:
        """On the lifecycle thread: compile what was published, and answer once the deciding
        thread (which goes on deciding meanwhile) serves it."""
        with self.reload_lock:
            self._offer(self._compile(self.latest_set))
            wanted = self.offers
        self._wake()
        self._remember_checks()
        with self.swapped:
            served = self.swapped.wait_for(
                lambda: self.swapped_offer >= wanted or self.stopping, self.swap_wait
            )
        if not served:
            log.warning("a publication is not served yet: the next group of decisions swaps it in")
        return answer

    @staticmethod
    def _not_served(answer: Response) -> Response:
        """--watch: a publication (an approval, a rollback) is the store's record, served
        by `kimari serve` without --watch; this service goes on serving the files. The
        answer says so (`served: false`) instead of letting it pass for live."""
        status, headers, body = answer
        value = orjson.loads(body)
        value["served"] = False
        value["served_from"] = "files"
        value["note"] = translate(
            Msg(
                "recorded in the store, not served: this service serves the policy files as "
                "saved (kimari serve --watch); the store's publications are served by kimari "
                "serve without --watch"
            )
        )
        return status, headers, dumps(value)

    def _unpublished(self) -> list[dict[str, str]]:
        """Without --watch: the policy files of the folder that the store has no publication
        of (a policy's id is its file's name), which are therefore not served; the service
        logs each at start with how to publish it (Lifecycle.catch_up)."""
        if self.watch:
            return []
        served = self.service.snapshot.policy_set.statuses
        return [
            {"id": path.stem, "file": shown_path(path)}
            for path in policy_files(self.folder)
            if path.stem not in served
        ]

    def _list_policies(self) -> Response:
        """GET /v1/policies; without --watch, with the folder's files not published
        (`unpublished`: id and file), so that a policy missing from the list is explained."""
        answer = self.service.list_policies()
        if self.watch or answer[0] != 200:
            return answer
        status, headers, body = answer
        value = orjson.loads(body)
        value["unpublished"] = self._unpublished()
        return status, headers, dumps(value)

    def _unpublished_hint(self, answer: Response | Pending, policy_id: str) -> Response | Pending:
        """A 404 unknown_policy for a policy whose file is in the folder but was never
        published (without --watch): the hint says so, and how to publish it."""
        if not isinstance(answer, tuple) or answer[0] != 404 or self.watch:
            return answer
        status, headers, body = answer
        if not _POLICY_FILE.fullmatch(policy_id):
            return answer
        path = self.folder / f"{policy_id}.yaml"
        try:
            found = path.is_file()
        except OSError:
            found = False
        value = orjson.loads(body)
        if not found or value.get("code") != "unknown_policy":
            return answer
        value["hint"] = translate(
            Msg(
                "{file} is not published in the store, so it is not served: publish it "
                "(kimari publish {id})",
                file=shown_path(path),
                id=policy_id,
            )
        )
        return status, headers, dumps(value)

    def _decide(self, meta: dict[str, Any], body: bytes) -> Response | Pending:
        result = self.service.decide(
            meta["policy"], body, meta.get("key"), bool(meta.get("explain"))
        )
        self._fault(meta)  # decided, not yet logged nor answered
        return self._unpublished_hint(result, meta["policy"])

    def _get_decision(self, decision_id: str) -> Response:
        """A decision of the log, else a flow's move or refusal with that id."""
        answer = self.service.get_decision(decision_id)
        if answer[0] != 404 or not DECISION_ID.fullmatch(decision_id):  # a NUL: 500 on PG
            return answer
        return self.flows.decision(decision_id) or answer

    def _put_data(self, meta: dict[str, Any], body: bytes) -> Response:
        self._fault(meta)
        principal = meta.get("principal", "anonymous")
        return self.service.put_data(meta["name"], body, principal, meta.get("if_match"))

    def _reset_data(self, meta: dict[str, Any], _body: bytes) -> Response:
        self._fault(meta)
        principal = meta.get("principal", "anonymous")
        return self.service.reset_data(meta["name"], principal, meta.get("if_match"))

    def _sync_data(self, meta: dict[str, Any], _body: bytes) -> Response:
        """Answer once the data sets the store has now are served here (the front asks every
        worker after a replacement, before it answers it)."""
        self._fault(meta)
        self.data.prepare()
        return json_response(200, {"data_generation": self.service.snapshot.data_generation})

    def _poll(self) -> Response:
        self.poll_now.set()  # the reloader looks now; this thread goes on deciding
        return json_response(200, {"polling": True})

    def _openapi(self) -> Response:
        from engine.service.openapi import openapi_document

        service = self.service
        document = openapi_document(
            service.snapshot, max_batch=service.max_batch, examples=self.folder.parent / "examples"
        )
        return json_response(200, document)

    def handle(self, frame_id: int, op: int, meta: dict[str, Any], body: bytes) -> Pending | None:
        if op in DATA_OPS:
            self.data.submit((frame_id, op, meta, body))
            return None
        if op in self.lifecycle_ops:
            self.editing.submit((frame_id, op, meta, body))
            return None
        # messages in the language the front read from Accept-Language (engine/core/i18n.py)
        with using_language(meta.get("lang")) as lang:
            result = self._respond(op, meta, body)
        if isinstance(result, Pending):
            result.lang = lang
            return result
        self.out.append(self._frame(frame_id, result))
        return None

    def _respond(self, op: int, meta: dict[str, Any], body: bytes) -> Response | Pending:
        handler = self.handlers.get(op)  # type: ignore[call-overload]  # Op is an IntEnum
        if handler is None:
            return problem(400, "unknown_operation", f"operation {op} is unknown")
        try:
            return handler(meta, body)
        except StoreUnavailable as exc:  # the database restarts, say: nothing was done
            return from_error(exc, DECISION)
        except Exception:  # a bug of ours: answered, logged with an id; the worker lives
            return internal_error(_request_name(op, meta))

    def _answer_aside(self, job: Job) -> None:
        """A data or a lifecycle request, on its own thread: answered as soon as it is done."""
        frame_id, op, meta, body = job
        with using_language(meta.get("lang")):
            result = self._respond(op, meta, body)
            assert not isinstance(result, Pending)  # nothing of these is logged
            frame = self._frame(frame_id, result)
        self._reply([frame])

    def stats(self) -> dict[str, Any]:
        snapshot = self.service.snapshot
        return {
            "slot": self.slot,
            "pid": os.getpid(),
            "commits": self.decision_log.commits,
            "rows": self.decision_log.rows,
            "commit_failures": self.commit_failures,
            "commits_inline": self.inline_commits,
            "commit_cpu_s": self.inline_cpu + self.committer_cpu,
            "batch_buckets": list(BATCH_BUCKETS),
            "batch_counts": list(self.batch_counts),
            "generation": snapshot.generation,
            "policies": {
                pid: {"revision": s.policy.revision if s.policy else None, "state": s.state}
                for pid, s in snapshot.policy_set.statuses.items()
            },
        }

    def commit(self, pending: list[tuple[int, Pending]]) -> list[bytes]:
        """Write a group's entries in one transaction; the reply frames, to send after it."""
        entries = [e for _, p in pending for e in p.entries]
        logged: list[Logged] = []
        if entries:
            started = time.perf_counter()
            try:
                logged = self.decision_log.commit(entries)
                self.last_commit_s = time.perf_counter() - started
            except Exception as exc:  # not durable: nothing is acknowledged
                self.commit_failures += 1
                log.error("decision log commit failed: %s", exc)
                gone = Msg("the decision log cannot be written")
                code = (
                    "store_unavailable" if isinstance(exc, StoreUnavailable) else "log_unavailable"
                )
                frames = []
                for frame_id, item in pending:
                    with using_language(item.lang):
                        frames.append(self._frame(frame_id, unavailable(gone, code)))
                return frames
            rows = len(entries)
            index = next((i for i, b in enumerate(BATCH_BUCKETS) if rows <= b), len(BATCH_BUCKETS))
            self.batch_counts[index] += 1
        frames = []
        offset = 0
        for frame_id, item in pending:
            mine = logged[offset : offset + len(item.entries)]
            offset += len(item.entries)
            try:
                with using_language(item.lang):
                    response = self.service.finish(item, mine)
            except Exception:  # logged, but its answer failed: say so, keep committing
                with using_language(item.lang):
                    response = internal_error("the answer of a logged decision")
                item.meta = {}
            frames.append(self._frame(frame_id, response, item.meta))
        return frames

    def _committer(self) -> None:
        """Commits groups while the deciding thread decides the next one: the fsync (which
        releases the GIL) overlaps with deciding instead of stalling it."""
        _name_os_thread(COMMIT_THREAD)
        while True:
            with self.groups_ready:
                while not self.groups:
                    if self.stopping:
                        return
                    self.groups_ready.wait()
            if self.commit_wait:
                time.sleep(self.commit_wait)  # let more decisions join this group
            pending: list[tuple[int, Pending]] = []
            rows = 0
            with self.groups_ready:
                while self.groups and rows < self.max_rows:
                    group = self.groups.popleft()
                    pending.extend(group)
                    rows += sum(len(p.entries) for _, p in group)
                self.committing = True
            try:
                started = time.thread_time()
                self._reply(self.commit(pending))
                self.committer_cpu += time.thread_time() - started
            finally:
                with self.groups_ready:
                    self.committing = False

    def _reply(self, frames: list[bytes]) -> None:
        try:
            with self.send_lock:
                self.sock.sendall(b"".join(frames))
        except OSError:  # the front is gone: the rest is still committed, then we stop
            log.warning("the front went away; %d replies not sent", len(frames))

    def _log_group(self, pending: list[tuple[int, Pending]]) -> None:
        """Commit a decided group here while commits are quick and the committer has nothing
        (so that groups stay in order); else hand it to the committer (module docstring)."""
        with self.groups_ready:
            here = (
                self.inline_below > 0
                and not self.groups
                and not self.committing
                and (self.inline or self.since_probe >= PROBE_EVERY)
            )
            if not here:
                self.groups.append(pending)
                self.groups_ready.notify()
                self.since_probe += 1
                return
        self.since_probe = 0
        started = time.thread_time()
        frames = self.commit(pending)
        self.inline = self.last_commit_s < self.inline_below
        self.inline_commits += 1
        self._reply(frames)
        self.inline_cpu += time.thread_time() - started

    def run(self) -> None:
        _settle_heap()
        threading.Thread(target=self._reloader, name="reloader", daemon=True).start()
        self.data.start()
        self.editing.start()
        self.committer = threading.Thread(target=self._committer, name="committer", daemon=True)
        self.committer.start()
        reader = ipc.FrameReader()
        frames: deque[tuple[int, int, Any, bytes]] = deque()
        self.out.append(
            ipc.encode(ipc.EVENT_ID, Event.READY, {"slot": self.slot, "pid": os.getpid()})
        )
        self._flush()
        sock = self.sock
        open_ = True
        while open_ or frames:  # at EOF, the frames read with it are still decided
            if not frames:
                ready, _, _ = select.select([sock, self.wake_r], [], [], 0.25)
                if self.wake_r in ready:
                    os.read(self.wake_r, 4096)
                if sock in ready:
                    open_ = self._read(reader, frames)
            self._take_reload()
            self._take_data()
            if frames:
                self.decide_group(frames)

    def decide_group(self, frames: deque[tuple[int, int, Any, bytes]]) -> None:
        """Take one group off `frames` (at most `max_rows` decisions), answer at once what
        has nothing to log, and log the rest, whose answers follow their commit."""
        try:
            self._check_data()
        except Exception as exc:  # the store busy: decide with the data served, check again
            log.warning("could not check the data versions: %s", exc)
        pending: list[tuple[int, Pending]] = []
        while frames and len(pending) < self.max_rows:
            frame_id, op, meta, body = frames.popleft()
            result = self.handle(frame_id, op, meta or {}, body)
            if result is not None:
                if result.entries:
                    pending.append((frame_id, result))
                else:  # a batch in which nothing could be decided: nothing to log
                    with using_language(result.lang):
                        finished = self.service.finish(result, [])
                    self.out.append(self._frame(frame_id, finished, result.meta))
        self._flush()
        if pending:
            self._log_group(pending)

    def close(self, timeout: float) -> None:
        """The end of a worker (its socket reached EOF: the front is stopping): commit the
        groups still queued (within `timeout`), then close every connection to the store,
        so that the last process to close it checkpoints the WAL and removes -wal and -shm."""
        with self.groups_ready:
            self.stopping = True
            self.groups_ready.notify_all()
        self.editing.stop()  # what was not begun is not made: the front answered it 503
        with self.swapped:  # no more swaps: an approval waiting for one answers now
            self.swapped.notify_all()
        if self.committer is not None:
            self.committer.join(timeout)
            if self.committer.is_alive():
                log.error("the decision log did not commit within %ss; stopping anyway", timeout)
                return  # closing under a commit would fail it: exit, SQLite recovers the WAL
        self.data.stop(timeout)  # data requests taken are answered first
        if self.data.thread.is_alive():
            log.error("a data set change did not end within %ss; stopping anyway", timeout)
            return
        self.editing.join(timeout)  # and the lifecycle's request under way
        if self.editing.thread.is_alive():
            log.error("a lifecycle request did not end within %ss; stopping anyway", timeout)
            return
        # the reloader's own connections: not while it compiles (a poll between two compiles
        # finds them closed and stops: `stopping` is set)
        reloading = self.reload_lock.acquire(timeout=timeout)
        for close in (
            self.lifecycle.close,
            self.checks.close,
            self.revisions.close,
            self.flows.close,
            self.store.close,
            self.decision_log.close,
            self.backend.close,  # the components share it: its connections, lock, pool
        ):
            try:
                close()
            except Exception as exc:  # close the others all the same
                log.warning("closing the store: %s", exc)
        if reloading:
            self.reload_lock.release()
        self._last_close()

    def _last_close(self) -> None:
        """Workers told to stop at the same instant close at the same instant: each one's last
        close sees the other's connections still open, and neither removes the WAL. The one
        that finds it still there opens and closes once more, after the others are gone (the
        slots take turns), so that the store is left checkpointed, as a clean stop should."""
        location = parse_location(self.config["store"])
        if location.kind != SQLITE or location.target == MEMORY:
            return
        store = location.target
        wal = Path(f"{store}-wal")
        for _ in range(3):
            if not wal.exists():
                return
            time.sleep(0.02 * (self.slot + 1))
            try:
                connect(store).close()
            except Exception as exc:  # the stop goes on: SQLite recovers the WAL on open
                log.warning("checkpointing the store at the stop: %s", exc)
                return

    def _read(self, reader: ipc.FrameReader, frames: deque[tuple[int, int, Any, bytes]]) -> bool:
        """Take what has arrived, without waiting for more (READ_TURN chunks at most: the
        rest is read at the next turn); False on EOF. Every chunk read is fed: one read past
        the last fed shifted every frame after it (a 40 MiB body was read as a frame of
        809,054,242 bytes, a decision's body as bytes of another)."""
        data = self.sock.recv(READ_CHUNK)
        for turn in range(1, READ_TURN + 1):
            if not data:
                return False
            frames.extend(reader.feed(data))
            if turn == READ_TURN:
                break
            try:
                data = self.sock.recv(READ_CHUNK, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
        return True


def _server_paths(folder: Path) -> tuple[bytes, ...]:
    """The absolute path of the project (the policies folder's parent), as it appears in JSON:
    answers show `policies/x.yaml:12:5`, never where the server keeps its files. Diagnostics
    name files as they were opened (relative to the working directory when they can be), so
    this is cut out of every answer the worker sends."""
    root = folder.resolve().parent
    if len(root.parts) < 2:  # the file system's root: nothing to cut without cutting slashes
        return ()
    text = str(root) + os.sep
    return tuple(dict.fromkeys([text.encode(), orjson.dumps(text)[1:-1]]))


def _request_name(op: int, meta: dict[str, Any]) -> str:
    """A request's operation and path parameters, for the log (never its body)."""
    try:
        name = Op(op).name
    except ValueError:
        name = str(op)
    params = {k: v for k, v in meta.items() if k not in ("fault", "lang")}
    return f"{name} {params}"


def main(argv: list[str]) -> int:
    fd, slot = int(argv[1]), int(argv[2])
    logging.basicConfig(
        level=logging.INFO,
        format=f"kimari worker[{slot}] %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    config = orjson.loads(os.environ["KIMARI_WORKER"])
    sock = socket.socket(fileno=fd)
    sock.setblocking(True)
    # the committer thread must get the GIL back soon after its fsync, not 5 ms later
    sys.setswitchinterval(0.0005)
    # Ctrl-C or a SIGTERM to the process group reaches the workers too: the front decides when
    # they stop (it closes their socket after the last answers; EOF ends the loop here)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        worker = Worker(sock, slot, config)
    except (BrokenPipeError, ConnectionResetError):
        return 0  # the front went away while this worker started
    try:
        worker.run()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the front went away: nothing left to serve
    finally:
        worker.close(float(config["shutdown_timeout"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
