"""`kimari flow` and `kimari history`: exit codes 0 (moved), 1 (refused or invalid event,
with the JSON pointer), 2 (usage or policy errors), on the shipped claim-status flow (EX-6)
and lead follow-up (FU-5); every event is sent by an actor (--actor, --role), and the
history shows who made each move."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pytest

from engine.cli.main import main
from tests import ROOT, blacklisted_order

POLICIES = str(ROOT / "policies")
AT = "2024-09-20T10:00:00+09:00"
DEALER = ("--actor", "dealer-1", "--role", "販売店", "--actor-name", "横浜店 山田")
OPERATOR = ("--actor", "op-1", "--role", "オートックワン")
STAFF = ("--actor", "staff-1", "--role", "セールススタッフ")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def store(tmp_path: Path) -> str:
    return str(tmp_path / "flows.sqlite3")


def event(tmp_path: Path, body: object, name: str = "event.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(body, ensure_ascii=False))
    return str(path)


def flow(
    capsys: pytest.CaptureFixture[str], store: str, entity: str, path: str, *extra: str
) -> tuple[int, str, str]:
    if "--actor" not in extra:
        extra = (*extra, *DEALER)
    return run(
        capsys,
        "flow",
        "claim-status",
        entity,
        path,
        "--store",
        store,
        "--policies",
        POLICIES,
        "--at",
        AT,
        *extra,
    )


def excluded(capsys: pytest.CaptureFixture[str], tmp_path: Path, store: str, entity: str) -> None:
    """EX-2: the dealer makes the estimate 対象外 with an eligible reason, so it can be claimed."""
    body = {"type": "exclude", "exclusion_reason": "重複"}
    code, out, _ = flow(capsys, store, entity, event(tmp_path, body, "exclude.json"))
    assert code == 0, out


def test_ex6_flow_prints_the_move_and_exits_0(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, store: str
) -> None:
    excluded(capsys, tmp_path, store, "EST-1")
    code, out, _ = flow(capsys, store, "EST-1", event(tmp_path, {"type": "claim"}))
    assert code == 0
    moved = (
        "claim-status EST-1: 未申請 (not_claimed) -> 依頼中 (requested)"
        " by claim [EX-2, EX-3.6, EX-4, EX-6]"
    )
    assert moved in out
    assert "by 横浜店 山田 (dealer-1) [販売店]" in out
    assert "claims = 1" in out


def test_ex6_an_event_from_another_role_exits_1_naming_the_roles_that_may(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, store: str
) -> None:
    excluded(capsys, tmp_path, store, "EST-8")
    assert flow(capsys, store, "EST-8", event(tmp_path, {"type": "claim"}))[0] == 0
    review = event(tmp_path, {"type": "start_review"}, "review.json")
    code, out, _ = flow(capsys, store, "EST-8", review)
    assert code == 1
    assert "role_not_allowed" in out and "「オートックワン」" in out
    assert flow(capsys, store, "EST-8", review, *OPERATOR)[0] == 0
    code, out, _ = run(
        capsys, "history", "claim-status", "EST-8", "--store", store, "--policies", POLICIES
    )
    assert code == 0
    assert "[exclude] by 横浜店 山田 (dealer-1) [販売店]" in out
    assert "[claim] by 横浜店 山田 (dealer-1) [販売店]" in out
    assert "[start-review] by op-1 [オートックワン]" in out


def test_a_flow_event_without_an_actor_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, store: str
) -> None:
    claim = event(tmp_path, {"type": "claim"})
    code, _, err = run(
        capsys, "flow", "claim-status", "X", claim, "--store", store, "--policies", POLICIES
    )
    assert code == 2 and "--actor" in err


def test_ex6_a_refused_move_exits_1_naming_the_state_and_history_keeps_only_moves(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, store: str
) -> None:
    excluded(capsys, tmp_path, store, "EST-2")
    claim = event(tmp_path, {"type": "claim"})
    assert flow(capsys, store, "EST-2", claim)[0] == 0
    code, out, _ = flow(capsys, store, "EST-2", claim, "--format", "json")
    assert code == 1
    body = json.loads(out)
    assert body["allowed"] is False and body["refusal"]["code"] == "event_not_allowed"
    assert "現在の状態「依頼中」" in body["refusal"]["message"]["ja"]
    assert body["entity"] == {"id": "EST-2", "version": 2}
    code, out, _ = run(
        capsys,
        "history",
        "claim-status",
        "EST-2",
        "--store",
        store,
        "--policies",
        POLICIES,
        "--refusals",
        "--format",
        "json",
    )
    assert code == 0
    history = json.loads(out)
    assert history["state"]["id"] == "requested"
    assert [h["transition"] for h in history["history"]] == ["exclude", "claim"]
    assert [r["code"] for r in history["refusals"]] == ["event_not_allowed"]


def test_ex6_a_missing_reason_is_refused_with_its_condition_and_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, store: str
) -> None:
    excluded(capsys, tmp_path, store, "EST-3")
    assert flow(capsys, store, "EST-3", event(tmp_path, {"type": "claim"}))[0] == 0
    assert (
        flow(capsys, store, "EST-3", event(tmp_path, {"type": "start_review"}), *OPERATOR)[0] == 0
    )
    code, out, _ = flow(capsys, store, "EST-3", event(tmp_path, {"type": "reject"}), *OPERATOR)
    assert code == 1
    assert "refused in 確認中 (under_review): missing_field" in out
    assert re.search(r"✗ reject: event\.reason != null    \S*claim-status\.yaml:\d+:\d+", out)
    assert "missing: /event/reason" in out


def test_an_invalid_event_exits_1_with_its_json_pointer(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, store: str
) -> None:
    code, _, err = flow(capsys, store, "EST-4", event(tmp_path, {"type": "claim", "detial": "x"}))
    assert code == 1
    assert "/event/detial: unknown_field" in err
    assert "did you mean 'detail'?" in err


def test_an_entity_id_holding_a_slash_is_refused_as_no_request_could_reach_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, store: str
) -> None:
    code, _, err = flow(capsys, store, "A/B", event(tmp_path, {"type": "claim"}))
    assert code == 2
    assert "entity_id_invalid: ENTITY_ID: an entity id cannot hold '/'" in err
    excluded(capsys, tmp_path, store, "A-B")
    code, _, _ = flow(capsys, store, "A-B", event(tmp_path, {"type": "claim"}))
    assert code == 0


def test_a_decision_policy_an_unknown_policy_or_bad_json_exit_2_or_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, store: str
) -> None:
    claim = event(tmp_path, {"type": "claim"})
    code, _, err = run(
        capsys,
        "flow",
        "cancellation-fees",
        "X",
        claim,
        "--store",
        store,
        "--policies",
        POLICIES,
        *DEALER,
    )
    assert code == 2 and "not_a_flow" in err
    assert not Path(store).exists(), "no store file for a command that cannot run"
    code, _, err = run(
        capsys,
        "flow",
        "claim-statu",
        "X",
        claim,
        "--store",
        store,
        "--policies",
        POLICIES,
        *DEALER,
    )
    assert code == 2 and "did you mean 'claim-status'?" in err
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    code, _, err = flow(capsys, store, "EST-5", str(bad))
    assert code == 1 and "json_invalid" in err


def test_fu5_a_termination_request_lists_the_actions_it_requires(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, store: str
) -> None:
    steps = [
        ({"type": "send"}, ("--actor", "op-1", "--role", "オートックワン")),
        (
            {
                "type": "record_follow_up",
                "task_types": ["電話"],
                "result": "接触",
                "todo_status": "進行中",
            },
            STAFF,
        ),
        ({"type": "request_termination", "reason": "購入延期", "detail": "半年後"}, STAFF),
    ]
    for i, (body, actor) in enumerate(steps):
        code, out, _ = run(
            capsys,
            "flow",
            "lead-follow-up",
            "L-1",
            event(tmp_path, body, f"e{i}.json"),
            "--store",
            store,
            "--policies",
            POLICIES,
            "--at",
            AT,
            *actor,
        )
        assert code == 0, out
    assert "NOTIFY_MANAGERS -> 店長, セールスマネージャー" in out
    code, out, _ = run(
        capsys, "history", "lead-follow-up", "L-1", "--store", store, "--policies", POLICIES
    )
    assert code == 0
    assert "フォロー中 (following), version 3" in out  # FU-5: the request waits beside it
    assert "action NOTIFY_MANAGERS" in out


def served_store(tmp_path: Path) -> tuple[Path, str]:
    """A copy of the shipped policies, and a store that published them, as `kimari serve`
    does on its first start."""
    from engine.api import open_lifecycle
    from engine.store.revisions import RevisionStore

    for folder in ("policies", "schemas"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    path = str(tmp_path / "served.sqlite3")
    RevisionStore(path).close()  # the store kimari serve creates
    lifecycle = open_lifecycle(path)
    try:
        lifecycle.bootstrap(tmp_path / "policies")
    finally:
        lifecycle.close()
    return tmp_path / "policies", path


def test_ex2_flow_on_a_served_store_decides_with_its_published_revision_not_an_edited_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """An edited file moved entities of the store the service serves, under a revision the
    store never had: here a claim without the 対象外 that EX-2 requires."""
    folder, path = served_store(tmp_path)
    policy = folder / "claim-status.yaml"
    text = policy.read_text(encoding="utf-8")
    when = (
        '      when:\n        - entity.estimate_status == "対象外"\n'
        "        - derived.claimable_reason\n"
    )
    edited = text.replace(when, "", 1)
    assert edited != text
    policy.write_text(edited, encoding="utf-8")
    claim = event(tmp_path, {"type": "claim"})
    args = ("flow", "claim-status", "EST-9", claim, "--store", path, "--at", AT, *DEALER)
    code, out, err = run(capsys, *args, "--policies", str(folder))
    assert code == 1 and "not_claimed" in out, out + err  # refused by the published revision
    # the same edit, in a store nothing has published into: the sandbox decides by the file
    sandbox = str(tmp_path / "sandbox.sqlite3")
    code, out, _ = run(capsys, *args[:4], "--store", sandbox, *args[6:], "--policies", str(folder))
    assert code == 0 and "requested" in out


def test_ho1_flow_on_a_served_store_reads_the_data_sets_current_there(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A blacklist replaced through the API is what the service decides with: the CLI read
    the file's, and held an order the service let through."""
    from engine.store.versions import Store

    folder, path = served_store(tmp_path)
    order = blacklisted_order("O-1001")
    check = event(tmp_path, {"type": "check", "facts": {"order": order}})
    system = ("--actor", "system", "--role", "システム", "--at", "2024-10-01T10:00:00+09:00")

    def state_of(entity: str) -> str:
        args = ("flow", "order-hold-status", entity, check, "--store", path, *system)
        code, out, err = run(capsys, *args, "--policies", str(folder), "--format", "json")
        assert code == 0, out + err
        return str(json.loads(out)["state"]["after"]["id"])

    assert state_of("O-1") == "held"  # the file's blacklist, published with it
    store = Store(path)
    try:
        store.put_data("blacklist", "emptied", [], principal="ops")
    finally:
        store.close()
    assert state_of("O-2") == "open"


def test_a_policy_a_served_store_has_not_published_is_unknown_with_how_to_publish_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder, path = served_store(tmp_path)
    policy = folder / "claim-status.yaml"
    (folder / "claim-status-2.yaml").write_text(
        policy.read_text(encoding="utf-8").replace("id: claim-status", "id: claim-status-2", 1),
        encoding="utf-8",
    )
    claim = event(tmp_path, {"type": "claim"})
    code, _, err = run(
        capsys,
        "flow",
        "claim-status-2",
        "E",
        claim,
        "--store",
        path,
        "--policies",
        str(folder),
        *DEALER,
    )
    assert code == 2
    assert "unknown_policy: no policy 'claim-status-2'" in err
    assert "publish" in err


def test_an_entity_moved_before_its_policy_was_published_stays_readable(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Moved while the store had published nothing (decided by the file), then another
    policy published: kimari history said 'no policy' for the entity it had just shown. A
    new move asks for the policy to be published, as the service would (404 with a hint)."""
    from engine.api import open_lifecycle
    from engine.lifecycle.candidates import from_path

    for folder in ("policies", "schemas"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    folder, path = tmp_path / "policies", str(tmp_path / "store.sqlite3")
    excluded(capsys, tmp_path, path, "EST-5")  # a sandbox store: decided by the file
    lifecycle = open_lifecycle(path)
    try:
        lifecycle.submit(from_path(folder / "cancellation-fees.yaml"), "alice", "first")
    finally:
        lifecycle.close()
    args = ("history", "claim-status", "EST-5", "--store", path, "--policies", str(folder))
    code, out, err = run(capsys, *args)
    assert code == 0, err
    assert "claim-status EST-5" in out and "exclude" in out
    claim = event(tmp_path, {"type": "claim"})
    code, _, err = flow(capsys, path, "EST-5", claim)
    assert code == 2 and "publish" in err, err


def test_an_event_id_used_by_another_event_exits_1_naming_the_option(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, store: str
) -> None:
    """It exited 2, read as a misuse of --event-id, though the id was well formed: another
    event of the entity had used it. The same event sent again with it is its retry."""
    body = {"type": "exclude", "exclusion_reason": "重複"}
    first = event(tmp_path, body, "exclude.json")
    assert flow(capsys, store, "EST-9", first, "--event-id", "ev-1")[0] == 0
    assert flow(capsys, store, "EST-9", first, "--event-id", "ev-1")[0] == 0  # a retry
    claim = event(tmp_path, {"type": "claim"})
    code, out, err = flow(capsys, store, "EST-9", claim, "--event-id", "ev-1")
    assert code == 1, out + err
    assert "event_id_conflict" in out + err and "--event-id" in out + err
    bad = flow(capsys, store, "EST-9", claim, "--event-id", "x" * 300)  # its form: a misuse
    assert bad[0] == 2


def test_log_names_where_a_flows_decision_id_is_kept(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, store: str
) -> None:
    """`kimari flow` prints a decision_id that `kimari log --id` said nothing of but "no
    decisions": a flow's moves are kept in their entity's history."""
    claim = event(tmp_path, {"type": "claim"})
    excluded(capsys, tmp_path, store, "EST 9")  # a blank inside: quoted in the command
    code, out, _ = flow(capsys, store, "EST 9", claim, "--format", "json")
    assert code == 0
    moved = json.loads(out)["decision_id"]
    code, out, _ = flow(capsys, store, "EST 9", claim, "--format", "json")
    assert code == 1
    refused = json.loads(out)["decision_id"]
    code, _, err = run(capsys, "log", "--id", moved, "--store", store)
    assert code == 1
    assert f"{moved} is a move of entity 'EST 9' of flow 'claim-status' (version 2)" in err
    command = f"kimari history --store {store} claim-status 'EST 9'"
    assert err.rstrip().endswith(command), err
    code, out, _ = run(capsys, *shlex.split(command)[1:])
    assert code == 0 and "dealer-1" in out  # the command shows it, on the same store
    code, _, err = run(capsys, "log", "--id", refused, "--store", store)
    assert code == 1 and "is a refused event of entity 'EST 9'" in err
    refusals = f"kimari history --refusals --store {store} claim-status 'EST 9'"
    assert err.rstrip().endswith(refusals), err
    code, _, err = run(capsys, "log", "--id", "no-such-id", "--store", store)
    assert code == 1 and "no decisions" in err and "history" not in err


def test_log_of_an_id_in_a_store_without_flows_says_no_decisions(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from engine.store.decisions import DecisionLog

    only_log = tmp_path / "log.sqlite3"
    DecisionLog(only_log).close()  # no flows' tables at all
    code, _, err = run(capsys, "log", "--id", "d-1", "--store", str(only_log))
    assert code == 1 and "no decisions" in err and "Traceback" not in err


def test_the_history_command_named_is_pasteable_for_any_entity_id() -> None:
    from engine.cli.main import _history_command
    from engine.store.backend import parse_location

    default = parse_location("var/kimari.sqlite3")
    assert _history_command(default, "p", "E-1", False) == "kimari history p E-1"
    assert _history_command(default, "p", "-x", True) == "kimari history --refusals p -- -x"
    assert _history_command(default, "p", "a b", False) == "kimari history p 'a b'"
    pg = parse_location("postgresql://u:secret@db.example/k")
    shown = _history_command(pg, "p", "E", False)
    assert shown == "kimari history --store 'postgresql://u:***@db.example/k' p E"  # no password


def test_log_names_the_move_whose_event_consulted_a_decision(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, store: str
) -> None:
    order = blacklisted_order("O-3001")
    check = event(tmp_path, {"type": "check", "facts": {"order": order}})
    code, out, err = run(
        capsys,
        "flow",
        "order-hold-status",
        "O-3001",
        check,
        "--store",
        store,
        "--policies",
        POLICIES,
        "--at",
        "2024-10-01T10:00:00+09:00",
        "--actor",
        "system",
        "--role",
        "システム",
        "--format",
        "json",
    )
    assert code == 0, out + err
    consulted = json.loads(out)["event"]["decision"]["decision_id"]
    code, _, err = run(capsys, "log", "--id", consulted, "--store", store)
    assert code == 1
    assert (
        f"{consulted} is the decision of 'order-holds' that an event of entity 'O-3001' of "
        "flow 'order-hold-status' consulted"
    ) in err
    assert err.rstrip().endswith(f"kimari history --store {store} order-hold-status O-3001")
