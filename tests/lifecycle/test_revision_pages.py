"""A policy's revisions a page at a time (the Python API, `kimari revisions`, GET
…/revisions?limit=&before=), the published one always named even when it is older than
the page; and a rollback, a revision's publications, whatever the count of publications."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.cli.main import main
from engine.lifecycle.workflow import MAX_LISTED, Lifecycle
from engine.service.lifecycle import LifecycleService
from engine.store.revisions import NewRevision

POLICY = "cancellation-fees"


def _drafts(lifecycle: Lifecycle, count: int) -> None:
    """`count` drafts of the published revision, numbered after it (2, 3, ...)."""
    published = lifecycle.record(POLICY, 1)
    for n in range(count):
        lifecycle.revisions.add(
            NewRevision(POLICY, published.revision, "draft", "alice", f"d{n}", {}, 1)
        )


def test_a_listing_is_a_page_that_names_the_published_revision_and_the_next_page(
    lifecycle: Lifecycle,
) -> None:
    _drafts(lifecycle, 120)  # 121 records: 1 is published, 2..121 drafts
    first = lifecycle.listing(POLICY)
    assert [r["number"] for r in first["revisions"]] == list(range(121, 21, -1))
    assert first["next_before"] == 22
    assert first["published"]["number"] == 1
    assert first["published_revision"]["number"] == 1  # off the page, still named
    assert first["published_revision"]["state"] == "published"
    assert first["published_revision"]["publications"] == [first["published"]["publication"]]
    second = lifecycle.listing(POLICY, before=first["next_before"])
    assert [r["number"] for r in second["revisions"]] == list(range(21, 0, -1))
    assert second["next_before"] is None
    assert second["revisions"][-1] == second["published_revision"]
    assert lifecycle.listing(POLICY, limit=10_000)["next_before"] is None
    assert len(lifecycle.listing(POLICY, limit=10_000)["revisions"]) == 121
    assert len(lifecycle.listing(POLICY, limit=5)["revisions"]) == 5


def test_a_short_listing_is_one_page_as_before(lifecycle: Lifecycle) -> None:
    listing = lifecycle.listing(POLICY)
    assert [r["number"] for r in listing["revisions"]] == [1]
    assert listing["next_before"] is None
    assert listing["published_revision"] == listing["revisions"][0]
    assert set(listing) >= {"policy", "published", "approvals_required", "revisions"}


def test_the_service_pages_with_limit_and_before_up_to_its_maximum(
    lifecycle: Lifecycle,
) -> None:
    _drafts(lifecycle, 30)
    service = LifecycleService(
        str(lifecycle.path), lifecycle.rules, (lifecycle.store, lifecycle.revisions), lambda: []
    )

    def get(**query: str) -> tuple[int, Any]:
        status, _, body = service.revisions({"policy_id": POLICY, **query}, b"")
        return status, orjson.loads(body)

    status, page = get(limit=str(MAX_LISTED))
    assert status == 200 and len(page["revisions"]) == 31 and page["next_before"] is None
    status, page = get(limit="10", before="20")
    assert status == 200, page
    assert [r["number"] for r in page["revisions"]] == list(range(19, 9, -1))
    assert page["next_before"] == 10 and page["published_revision"]["number"] == 1
    for query in ({"limit": str(MAX_LISTED + 1)}, {"limit": "0"}, {"before": "x"}):
        status, problem = get(**query)
        assert status == 422 and problem["code"] == "query_invalid", problem


def test_kimari_revisions_takes_a_limit_and_says_how_to_see_more(
    capsys: pytest.CaptureFixture[str], lifecycle: Lifecycle
) -> None:
    _drafts(lifecycle, 6)
    store = ["--store", str(lifecycle.path)]
    assert main(["revisions", POLICY, "--limit", "3", *store]) == 0
    out = capsys.readouterr().out
    heads = [line for line in out.splitlines() if line.startswith(f"{POLICY}@")]
    assert [line.split()[0] for line in heads] == [f"{POLICY}@7", f"{POLICY}@6", f"{POLICY}@5"]
    assert f"published: {POLICY}@1 [" in out
    assert f"kimari revisions {POLICY} --before 5 --limit 3" in out
    assert main(["revisions", POLICY, "--limit", "3", "--before", "2", *store]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{POLICY}@1 ") and "published:" not in out and "--before" not in out
    assert main(["revisions", POLICY, "--format", "json", "--limit", "2", *store]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert len(listing["revisions"]) == 2 and listing["next_before"] == 6
    assert main(["revisions", POLICY, "--limit", str(MAX_LISTED + 1), *store]) == 2
    capsys.readouterr()


def test_a_rollback_and_a_revision_s_publications_see_past_any_count_of_publications(
    lifecycle: Lifecycle, folder: Path
) -> None:
    from engine.lifecycle.candidates import from_path

    path = folder / f"{POLICY}.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("en: Cancellation fees}", "en: Fees}", 1), encoding="utf-8")
    lifecycle.submit(from_path(path), "alice", "")  # @2 published, @1 retired
    lifecycle.rollback(POLICY, "1", "alice", "")  # @1 again, @2 retired
    # 1,200 more publications of @1 (as many rollbacks back and forth would leave)
    with lifecycle.revisions.backend.write() as session:
        for _ in range(1200):
            session.execute(
                "INSERT INTO publications (policy_id, number, revision, kind, principal, "
                "published_at, message) VALUES (?, 1, ?, 'rollback', 'x', 0, '')",
                (POLICY, lifecycle.record(POLICY, 1).revision),
            )
    detail = lifecycle.detail(POLICY, 2)
    assert [p["kind"] for p in detail["publications"]] == ["direct"]
    assert len(lifecycle.detail(POLICY, 1)["publications"]) == 1202
    listed = {r["number"]: r for r in lifecycle.listing(POLICY)["revisions"]}
    assert len(listed[2]["publications"]) == 1
    publication = lifecycle.rollback(POLICY, "2", "bob", "")
    assert publication.number == 2 and lifecycle.record(POLICY, 2).state == "published"
    # by content hash too
    publication = lifecycle.rollback(POLICY, lifecycle.record(POLICY, 1).revision, "bob", "")
    assert publication.number == 1
