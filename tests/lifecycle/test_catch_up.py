"""A store with publications, started beside policy files it never published: after the
sandbox (`kimari serve --watch`, then `kimari publish cancellation-fees`), `kimari serve`
served cancellation-fees alone and every other policy answered 404, unexplained.

With no approval required, a policy of the folder with no revision record at all is
published on start, as bootstrap publishes an empty store's; otherwise (approvals required,
or someone drafted, submitted or rejected a revision of it) nothing goes live unreviewed,
and the service logs a warning per file, with the command that publishes it."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from engine.lifecycle.candidates import from_path
from engine.lifecycle.workflow import Lifecycle, Rules
from engine.project.project import policy_files, shown_path
from engine.service import supervisor

FIRST = "cancellation-fees"


def _sandbox_store(folder: Path, approvals: int) -> Lifecycle:
    """A store where only cancellation-fees was ever published (`kimari publish` from the
    sandbox, which publishes nothing itself)."""
    lifecycle = Lifecycle(folder.parent / "var" / "kimari.sqlite3", Rules(workers=1), files=True)
    lifecycle.submit(from_path(folder / f"{FIRST}.yaml"), "alice", "first")
    if approvals:
        lifecycle.require(approvals)
    return lifecycle


def _others(folder: Path) -> list[str]:
    return [p.stem for p in policy_files(folder) if p.stem != FIRST]


def test_with_no_approval_required_every_policy_never_published_is_published_on_start(
    folder: Path,
) -> None:
    with _sandbox_store(folder, 0) as lifecycle:
        assert lifecycle.bootstrap(folder) == []  # the store is not empty
        published, warnings = lifecycle.catch_up(folder)
        assert warnings == []
        assert sorted(lifecycle.revisions.published()) == sorted([FIRST, *_others(folder)])
        assert len(published) == len(_others(folder))
        line = next(line for line in published if "order-holds@1" in line)
        assert line.startswith("bootstrap: published order-holds@1 (revision ")
        assert f"{shown_path(folder / 'order-holds.yaml')} was never published" in line
        record = lifecycle.record("order-holds", 1)
        assert (record.state, record.author) == ("published", "bootstrap")
        # the next start finds nothing to do
        assert lifecycle.catch_up(folder) == ([], [])


def test_with_approvals_required_nothing_goes_live_and_each_file_is_named_with_its_command(
    folder: Path,
) -> None:
    with _sandbox_store(folder, 1) as lifecycle:
        published, warnings = lifecycle.catch_up(folder)
        assert published == []
        assert list(lifecycle.revisions.published()) == [FIRST]
        assert len(warnings) == len(_others(folder))
        shown = shown_path(folder / "order-holds.yaml")
        assert (
            f"{shown}: policy 'order-holds' has no publication in the store: it is not served "
            "(404 unknown_policy) until it is published; kimari publish order-holds, then "
            "kimari approve order-holds@N as another principal"
        ) in warnings


def test_a_pending_or_drafted_policy_is_never_published_on_start_and_its_record_is_named(
    folder: Path,
) -> None:
    with _sandbox_store(folder, 1) as lifecycle:
        pending, _ = lifecycle.submit(from_path(folder / "order-holds.yaml"), "alice", "")
        assert pending.state == "pending"
        lifecycle.require(0)  # approvals no longer required: still, someone is on it
        draft = lifecycle.draft(from_path(folder / "claim-status.yaml"), "alice", "")
        published, warnings = lifecycle.catch_up(folder)
        assert "order-holds" not in lifecycle.revisions.published()
        assert "claim-status" not in lifecycle.revisions.published()
        holds = next(w for w in warnings if "'order-holds'" in w)
        assert holds.endswith(
            "order-holds@1 waits for approval: kimari approve order-holds@1 as another principal"
        )
        claims = next(w for w in warnings if "'claim-status'" in w)
        assert claims.endswith(
            f"kimari publish claim-status --draft {draft.number} submits its draft "
            f"claim-status@{draft.number}"
        )
        # the flows consulting order-holds fail their cases while it is not published: they
        # wait for it (published, each would fail every `check` with consulted_policy_missing)
        for flow in ("order-hold-status", "subscription-hold-status"):
            waits = next(w for w in warnings if f"'{flow}'" in w)
            assert "its test cases fail" in waits, waits
        # the others, never touched, were published (no approval is required now)
        assert len(published) == len(_others(folder)) - 4


def test_a_file_that_does_not_compile_is_named_with_its_first_problem(folder: Path) -> None:
    (folder / "broken.yaml").write_text("id: broken\nkind: decision\nrules: [\n", encoding="utf-8")
    with _sandbox_store(folder, 0) as lifecycle:
        _, warnings = lifecycle.catch_up(folder)
        [broken] = [w for w in warnings if "'broken'" in w]
        assert broken.startswith(
            f"{shown_path(folder / 'broken.yaml')}: policy 'broken' has no publication in the "
            "store and does not compile: "
        )
        assert broken.endswith("until it compiles and is published: kimari publish broken")
        assert "broken" not in lifecycle.revisions.published()


def test_kimari_serve_logs_a_warning_per_file_it_does_not_serve(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _sandbox_store(folder, 0).close()
    config: Any = SimpleNamespace(
        store=str(folder.parent / "var" / "kimari.sqlite3"), approvals=1, policies=folder
    )
    with caplog.at_level(logging.INFO, logger="kimari.supervisor"):
        supervisor._bootstrap(config)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    others = _others(folder)
    assert warned[0].startswith(f"{len(others)} policy files of {folder} have no publication")
    assert len(warned) == 1 + len(others)
    assert any("'order-holds' has no publication" in line for line in warned[1:])
    assert "was empty" not in caplog.text
    # approvals no longer required: the same start publishes them, at INFO
    caplog.clear()
    config.approvals = 0
    with caplog.at_level(logging.INFO, logger="kimari.supervisor"):
        supervisor._bootstrap(config)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert f"had never published {len(others)} policies of {folder}" in caplog.text


def test_a_policy_whose_cases_fail_is_not_published_on_start_and_its_flows_wait_for_it(
    folder: Path,
) -> None:
    """A submission runs the cases first; the start published without them. And a flow
    is published after the decision policies its events consult (its cases consult them)."""
    tests = folder / "exemption-claims.tests.yaml"
    text = tests.read_text(encoding="utf-8")
    wrong = text.replace("        before_deadline: true\n", "        before_deadline: false\n", 1)
    assert wrong != text
    tests.write_text(wrong, encoding="utf-8")
    with _sandbox_store(folder, 0) as lifecycle:
        published, warnings = lifecycle.catch_up(folder)
        assert "exemption-claims" not in lifecycle.revisions.published()
        [warning] = warnings
        assert warning.startswith(f"{shown_path(folder / 'exemption-claims.yaml')}: policy")
        assert "its test cases fail (1 of " in warning and "kimari test " in warning
        assert "kimari publish exemption-claims publishes it once they pass" in warning
        served = lifecycle.revisions.published()
        assert {"order-holds", "order-hold-status", "subscription-hold-status"} <= set(served)
        order = [line.split()[2].split("@")[0] for line in published]
        assert order.index("order-holds") < order.index("order-hold-status")
