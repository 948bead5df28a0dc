"""The revision records' store, on both backends: publications in one transaction, one job
per policy."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import psycopg
import pytest

from engine.store.backend import Backend
from engine.store.revisions import JobBusy, NewRevision, RevisionStore, StaleState


@pytest.fixture
def store(location: str) -> Iterator[RevisionStore]:
    revisions = RevisionStore(location)
    yield revisions
    revisions.close()


def _pending(store: RevisionStore, revision: str, base: int | None) -> int:
    return store.add(NewRevision("p", revision, "pending", "alice", "m", {}, base)).number


def test_a_publication_retires_the_previous_one_and_bumps_the_generation(
    store: RevisionStore,
) -> None:
    first = _pending(store, "aaaa", None)
    before = store.generations()
    store.publish("p", first, principal="a", kind="bootstrap", message="", from_states=("pending",))
    second = _pending(store, "bbbb", first)
    publication = store.publish(
        "p",
        second,
        principal="b",
        kind="approval",
        message="",
        from_states=("pending",),
        expect_published=first,
        approver="b",
    )
    assert store.published()["p"] == publication
    assert [r.state for r in store.records("p")] == ["published", "retired"]
    after = store.generations()
    assert after["policies"] == before.get("policies", 0) + 2
    assert after["revisions"] > before.get("revisions", 0)


def test_a_publication_on_a_moved_base_writes_nothing(store: RevisionStore) -> None:
    first = _pending(store, "aaaa", None)
    store.publish("p", first, principal="a", kind="bootstrap", message="", from_states=("pending",))
    stale = _pending(store, "cccc", None)  # based on nothing, but 1 is published now
    audit = len(store.audit("p"))
    with pytest.raises(StaleState):
        store.publish(
            "p",
            stale,
            principal="b",
            kind="approval",
            message="",
            from_states=("pending",),
            expect_published=None,
        )
    assert store.record("p", stale).state == "pending" and len(store.audit("p")) == audit
    assert store.published()["p"].number == first


def test_replicas_bootstrapping_one_policy_at_once_publish_it_once(
    backends: Callable[[], Backend],
) -> None:
    """Four stores of their own (as four replicas starting together) race to bootstrap
    two policies: each policy gets one record and one publication, and the losers write
    nothing."""
    stores = [RevisionStore(backends()) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    won: list[tuple[str, int]] = []

    def start(store: RevisionStore, revision: str) -> None:
        barrier.wait()
        for policy in ("p", "q"):
            new = NewRevision(policy, revision, "pending", "bootstrap", "bootstrap", {}, None)
            publication = store.bootstrap(new)
            if publication is not None:
                won.append((policy, publication.id))

    threads = [threading.Thread(target=start, args=(s, f"{n:04x}")) for n, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(policy for policy, _ in won) == ["p", "q"]
    for policy in ("p", "q"):
        [record] = stores[0].records(policy)
        assert (record.number, record.state) == (1, "published")
        [publication] = stores[0].publications(policy)
        assert (publication.kind, publication.number) == ("bootstrap", 1)
        assert [e.action for e in stores[0].audit(policy)] == ["bootstrap", "submit"]
    assert stores[0].bootstrap(NewRevision("p", "ffff", "pending", "b", "m", {}, None)) is None


def test_one_job_runs_per_policy_and_an_abandoned_one_is_failed(store: RevisionStore) -> None:
    job = store.start_job("impact", "p", "alice", {"draft": 2})
    with pytest.raises(JobBusy) as busy:
        store.start_job("impact", "p", "bob", {})
    assert busy.value.job.id == job.id
    other = store.start_job("impact", "q", "bob", {})  # another policy: its own job
    assert store.job_progress(job.id, 10, 100) is False
    assert store.cancel_job(job.id, "bob").cancel_requested  # type: ignore[union-attr]
    assert store.job_progress(job.id, 20, 100) is True
    store.finish_job(job.id, "cancelled", report={"scanned": 20})
    assert store.job(job.id).state == "cancelled"  # type: ignore[union-attr]
    again = store.start_job("impact", "p", "bob", {})
    assert again.id != job.id
    # a job whose process stopped beating does not block its policy for ever
    replaced = store.start_job("impact", "q", "carol", {}, stale_after_ms=-1)
    assert store.job(other.id).state == "failed"  # type: ignore[union-attr]
    assert replaced.state == "running"


def test_a_submission_that_stored_nothing_says_how_it_ended_in_the_audit_trail(
    store: RevisionStore,
) -> None:
    """The trail's "submit" row is written when the job begins: a submission refused by its
    tests read like one that was made."""
    refused = store.start_job("submit", "p", "alice", {"draft": 2})
    store.finish_job(refused.id, "failed", error={"code": "tests_failed", "message": "…"})
    cancelled = store.start_job("submit", "p", "alice", {"draft": 3})
    store.finish_job(cancelled.id, "cancelled", error={"code": "cancelled"})
    made = store.start_job("submit", "p", "alice", {"draft": 4})
    store.finish_job(made.id, "done", report={"revision": {}})
    impact = store.start_job("impact", "p", "bob", {})
    store.finish_job(impact.id, "failed", error={"code": "internal_error"})
    trail = [(e.action, e.principal, dict(e.detail)) for e in reversed(store.audit("p"))]
    assert trail == [
        ("submit", "alice", {"job": refused.id}),
        ("submit_failed", "alice", {"job": refused.id, "code": "tests_failed"}),
        ("submit", "alice", {"job": cancelled.id}),
        ("submit_cancelled", "alice", {"job": cancelled.id, "code": "cancelled"}),
        ("submit", "alice", {"job": made.id}),  # made: its revision's own rows say so
        ("impact", "bob", {"job": impact.id}),  # not a submission: nothing more
    ]
    store.finish_job(refused.id, "failed", error={"code": "tests_failed"})  # ended already
    assert len(store.audit("p")) == len(trail)


def test_a_jobs_parameters_keep_decimals_a_double_cannot_hold(store: RevisionStore) -> None:
    """An impact's new data is read exactly from its request: orjson wrote no Decimal (500)."""
    entries = [{"id": "E-1", "rate": Decimal("0.30000000000000001"), "big": 2**62}]
    job = store.start_job("impact", "d", "alice", {"data": {"rates": entries}})
    kept = store.job(job.id).params["data"]["rates"]  # type: ignore[union-attr]
    assert kept == entries and str(kept[0]["rate"]) == "0.30000000000000001"


def test_a_first_page_of_the_audit_trail_waits_for_an_entry_numbered_before_its_own(
    pg_url: str,
) -> None:
    """Writers of different policies audit side by side on PostgreSQL, and their entries
    are numbered at insert: a first page read while one is in flight waits for it, so
    paging with `before` never passes over it."""
    store = RevisionStore(pg_url)
    try:
        _pending(store, "aaaa", None)
        late = psycopg.connect(pg_url)
        late.execute(
            "INSERT INTO audit_log (at, principal, action, policy_id, number, detail) "
            "VALUES (0, 'carol', 'late', 'q', NULL, '{}')"
        )
        _pending(store, "bbbb", None)
        pages: list[str] = []

        def walk() -> None:
            page = store.audit(limit=1)
            while page:
                pages.extend(e.action for e in page)
                page = store.audit(limit=1, before=page[-1].seq)

        reader = threading.Thread(target=walk)
        reader.start()
        time.sleep(0.3)  # the reader is waiting now (if it were not, it would miss `late`)
        late.commit()
        late.close()
        reader.join(10)
        assert pages == ["submit", "late", "submit"]
    finally:
        store.close()


def test_a_data_set_defaults_to_the_version_of_the_newest_publication_that_reads_it() -> None:
    """One rule for what the service serves by default (registry.compile_published) and for
    what a flow's consulted policy is tested with (candidates.published_defaults)."""
    from engine.store.revisions import newest_data_versions

    published = [(3, {"blacklist": "b3"}), (7, {"blacklist": "b7", "rates": "r7"}), (5, {})]
    assert newest_data_versions(published) == {"blacklist": "b7", "rates": "r7"}
    assert newest_data_versions(reversed(published)) == {"blacklist": "b7", "rates": "r7"}
    assert newest_data_versions([]) == {}
