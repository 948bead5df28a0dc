"""The flow API on a real SQLite file: each shipped flow walked through its happy path and
its refusals, with the stored state and history checked after every refused move.

Rulebook IDs walked here: EX-6 (claim status), FU-1..FU-8 (lead follow-up), CX-1..CX-7
(case cancellation). The YAML step cases in policies/*.tests.yaml cover the same flows
move by move; these tests check what the YAML runner cannot see: the rows in the store.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.core.errors import EvaluationError, InputError, RetryLater, UsageError
from engine.flow.engine import FlowEngine, FlowResult, replay
from engine.store.flows import FlowStore
from tests.strategies import act, shipped_project

AT = "2024-09-20T10:00:00+09:00"
# EX-2: an estimate is claimed only once the dealer has made it 対象外 with an eligible reason.
EXCLUDE = {"type": "exclude", "exclusion_reason": "重複"}


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[FlowStore]:
    store = FlowStore(tmp_path / "flows.sqlite3")
    yield store
    store.close()


@pytest.fixture()
def engine(store: FlowStore) -> FlowEngine:
    return FlowEngine(shipped_project(), store)


def stored(engine: FlowEngine, policy: str, entity: str) -> tuple[Any, list[Any], int]:
    """Everything the store holds about an entity's moves: its row and its history."""
    return (
        engine.store.load(policy, entity),
        engine.store.history(policy, entity),
        len(engine.store.refusals(policy, entity)),
    )


def refused_without_change(
    engine: FlowEngine, policy: str, entity: str, event: dict[str, Any], **kwargs: Any
) -> FlowResult:
    before = stored(engine, policy, entity)
    result = act(engine, policy, entity, event, **kwargs)
    assert not result.allowed
    after = stored(engine, policy, entity)
    assert after[0] == before[0], "a refusal changed the stored entity"
    assert after[1] == before[1], "a refusal changed the history of moves"
    assert after[2] == before[2] + 1, "a refusal is logged, apart from the history"
    return result


# -- EX-6: the claim status flow ------------------------------------------------------------


def test_ex6_a_claim_walks_to_approved_and_every_move_is_in_the_history(
    engine: FlowEngine,
) -> None:
    steps = [
        (EXCLUDE, "not_claimed"),
        ({"type": "claim"}, "requested"),
        ({"type": "start_review"}, "under_review"),
        ({"type": "reject", "reason": "重複見積りが見つかりません"}, "rejected"),
        ({"type": "claim", "detail": "同一会員IDから2件"}, "requested"),
        ({"type": "start_review"}, "under_review"),
        ({"type": "approve"}, "approved"),
    ]
    for day, (event, state) in enumerate(steps, start=10):
        result = act(engine, "claim-status", "EST-1", event, at=f"2024-09-{day}T10:00:00+09:00")
        assert result.allowed and result.state == state
    view = engine.entity("claim-status", "EST-1")
    assert view["state"]["id"] == "approved" and view["state"]["final"] is True
    assert view["entity"]["version"] == 7 and view["allowed_events"] == []
    assert view["facts"]["claims"] == 2
    assert view["facts"]["rejection_reason"] == "重複見積りが見つかりません"
    rows = engine.history("claim-status", "EST-1")
    assert [(r.from_state, r.to_state) for r in rows] == [
        ("not_claimed", "not_claimed"),
        ("not_claimed", "requested"),
        ("requested", "under_review"),
        ("under_review", "rejected"),
        ("rejected", "requested"),
        ("requested", "under_review"),
        ("under_review", "approved"),
    ]
    assert [r.version for r in rows] == [1, 2, 3, 4, 5, 6, 7]
    assert rows[0].transition == "exclude" and rows[0].facts["exclusion_reason"] == "重複"
    assert rows[4].transition == "reclaim" and rows[4].event["detail"] == "同一会員IDから2件"
    assert rows[6].actions[0]["code"] == "SHOW_WITH_INVOICE"
    policy = engine.policy("claim-status")
    assert {r.revision for r in rows} == {policy.revision}
    assert rows[-1].facts == view["facts"]


def test_ex6_refusals_name_the_current_status_and_change_nothing(engine: FlowEngine) -> None:
    act(engine, "claim-status", "EST-2", EXCLUDE, at=AT)
    act(engine, "claim-status", "EST-2", {"type": "claim"}, at=AT)
    act(engine, "claim-status", "EST-2", {"type": "start_review"}, at=AT)
    cancel = refused_without_change(engine, "claim-status", "EST-2", {"type": "cancel"}, at=AT)
    refusal = cancel.refusal
    assert refusal is not None and refusal["code"] == "event_not_allowed"
    assert refusal["state"]["label"]["ja"] == "確認中"
    assert "現在の状態「確認中」" in refusal["message"]["ja"]
    assert "この時は何も操作できません" in refusal["message"]["ja"]
    assert refusal["allowed_events"] == ["approve", "reject"]
    reject = refused_without_change(engine, "claim-status", "EST-2", {"type": "reject"}, at=AT)
    assert reject.refusal is not None and reject.refusal["code"] == "missing_field"
    assert reject.refusal["pointer"] == "/event/reason"
    failed = reject.refusal["failed"][0]
    assert failed["condition"] == "event.reason != null"
    assert failed["location"]["file"] == "policies/claim-status.yaml"


def test_ex6_an_approved_claim_is_final(engine: FlowEngine) -> None:
    for event in (EXCLUDE, {"type": "claim"}, {"type": "start_review"}, {"type": "approve"}):
        act(engine, "claim-status", "EST-3", event, at=AT)
    for event in ({"type": "cancel"}, {"type": "claim", "detail": "再申請"}):
        result = refused_without_change(engine, "claim-status", "EST-3", event, at=AT)
        assert result.refusal is not None and result.refusal["code"] == "final_state"
        assert "最終状態" in result.refusal["message"]["ja"]


# -- FU: the lead follow-up flow --------------------------------------------------------------


def test_fu1_fu2_fu3_the_first_follow_up_minutes_are_recorded_once(engine: FlowEngine) -> None:
    """FU-1 a sent lead is 新着 with its ToDo 新規; FU-2 the ToDo leaving 新規 makes it
    フォロー中; FU-3 the minutes from sending to that change are recorded once."""
    lead = "LEAD-1"
    sent = act(engine, "lead-follow-up", lead, {"type": "send"}, at="2024-05-01T09:00:00+09:00")
    assert sent.state == "new"
    assert engine.entity("lead-follow-up", lead)["facts"]["todo_status"] == "新規"
    follow = {"type": "record_follow_up", "task_types": ["電話"], "result": "接触"}
    started = act(
        engine,
        "lead-follow-up",
        lead,
        {**follow, "todo_status": "進行中"},
        at="2024-05-01T10:30:00+09:00",
    )
    assert started.state == "following"
    assert engine.entity("lead-follow-up", lead)["facts"]["first_follow_up_minutes"] == 90
    # FU-5 / FU-6: a termination rejected with the manager's comment returns to following...
    act(
        engine,
        "lead-follow-up",
        lead,
        {"type": "request_termination", "reason": "購入延期", "detail": "来年検討"},
        at="2024-05-02T09:00:00+09:00",
    )
    back = act(
        engine,
        "lead-follow-up",
        lead,
        {"type": "reject_termination", "comment": "継続してください"},
        at="2024-05-03T09:00:00+09:00",
    )
    assert back.state == "following"
    assert [a["code"] for a in back.to_dict()["actions"]] == ["CONTINUE_FOLLOW_UP"]
    # ...and the minutes stay those of the first change.
    act(
        engine,
        "lead-follow-up",
        lead,
        {**follow, "todo_status": "進行中"},
        at="2024-06-01T09:00:00+09:00",
    )
    facts = engine.entity("lead-follow-up", lead)["facts"]
    assert facts["first_follow_up_minutes"] == 90
    assert [c["to"] for c in facts["todo_changes"]] == ["進行中", "進行中"]


def test_fu4_fu5_fu7_fu8_refusals_name_the_missing_field_or_the_unmet_condition(
    engine: FlowEngine,
) -> None:
    lead = "LEAD-2"
    act(engine, "lead-follow-up", lead, {"type": "send"}, at=AT)
    follow = {"type": "record_follow_up", "task_types": ["電話"], "result": "接触"}
    act(engine, "lead-follow-up", lead, {**follow, "todo_status": "進行中"}, at=AT)
    # FU-4: a new ToDo needs its due date.
    todo = refused_without_change(
        engine,
        "lead-follow-up",
        lead,
        {"type": "new_todo", "subject": "再電話", "task_types": ["電話"]},
    )
    assert todo.refusal is not None and todo.refusal["pointer"] == "/event/due"
    # FU-5: a termination request needs its detail.
    stop = refused_without_change(
        engine, "lead-follow-up", lead, {"type": "request_termination", "reason": "敗戦"}
    )
    assert stop.refusal is not None and "「詳細・理由」" in stop.refusal["message"]["ja"]
    # FU-7: no conversion before contact and an appointment.
    convert = refused_without_change(
        engine,
        "lead-follow-up",
        lead,
        {"type": "convert", "account": "新規作成", "opportunity_name": "商談"},
        at=AT,
    )
    assert convert.refusal is not None and convert.refusal["code"] == "condition_not_met"
    assert "フォロー中" in convert.refusal["message"]["ja"]
    assert convert.refusal["failed"][0]["condition"] == "entity.contacted == true"
    # FU-8: no appraisal before the current car.
    appraisal = refused_without_change(
        engine, "lead-follow-up", lead, {"type": "request_appraisal", "kind": "査定"}, at=AT
    )
    assert appraisal.refusal is not None
    assert appraisal.refusal["failed"][0]["condition"] == "entity.current_car != null"
    act(
        engine,
        "lead-follow-up",
        lead,
        {**follow, "todo_status": "進行中", "contacted": True, "appointment": True},
        at=AT,
    )
    done = act(
        engine,
        "lead-follow-up",
        lead,
        {"type": "convert", "account": "新規作成", "opportunity_name": "山田様商談"},
        at=AT,
    )
    assert done.state == "converted"


def test_fu6_an_approved_termination_ends_the_follow_up(engine: FlowEngine) -> None:
    lead = "LEAD-3"
    act(engine, "lead-follow-up", lead, {"type": "send"}, at=AT)
    act(
        engine,
        "lead-follow-up",
        lead,
        {
            "type": "record_follow_up",
            "task_types": ["電話"],
            "result": "接触",
            "todo_status": "進行中",
        },
        at=AT,
    )
    request = act(
        engine,
        "lead-follow-up",
        lead,
        {"type": "request_termination", "reason": "敗戦", "detail": "他社購入"},
        at=AT,
    )
    action = request.to_dict()["actions"][0]
    assert action["code"] == "NOTIFY_MANAGERS" and action["to"] == ["店長", "セールスマネージャー"]
    assert request.state == "following"  # FU-5: the request waits beside フォロー中
    assert act(engine, "lead-follow-up", lead, {"type": "approve_termination"}, at=AT).state == (
        "ended"
    )


# -- CX: the case cancellation flow --------------------------------------------------------------


def attempt(engine: FlowEngine, case: str, at: str) -> None:
    result = act(
        engine,
        "case-cancellation",
        case,
        {"type": "record_contact_attempt", "reached": False},
        at=at,
    )
    assert result.allowed


def test_cx2_sg_cancellation_is_decided_from_the_attempts_and_mails_recorded_in_the_store(
    engine: FlowEngine,
) -> None:
    """CX-2: three attempts on different days within the window, and an unanswered mail."""
    case = "CASE-1"
    act(
        engine,
        "case-cancellation",
        case,
        {"type": "update_case", "assignee": "佐藤", "manager": "鈴木"},
        at=AT,
    )
    request = {"type": "request_cancellation", "kind": "SGキャンセル", "reason": "連絡不通"}
    for hour in (9, 12, 18):  # three calls on one day are one attempt
        attempt(engine, case, f"2024-01-05T{hour:02}:00:00+09:00")
    refused = refused_without_change(engine, "case-cancellation", case, request, at=AT)
    assert refused.refusal is not None
    assert refused.refusal["failed"][0]["transition"] == "request-sg-cancel"
    assert "現在1日" in refused.refusal["message"]["ja"]
    attempt(engine, case, "2024-01-20T10:00:00+09:00")
    attempt(engine, case, "2024-02-10T10:00:00+09:00")
    no_mail = refused_without_change(engine, "case-cancellation", case, request, at=AT)
    assert no_mail.refusal is not None
    assert "assignee_mail_unanswered" in no_mail.refusal["failed"][0]["condition"]
    act(
        engine,
        "case-cancellation",
        case,
        {"type": "record_mail", "sender": "佐藤", "answered": False},
        at=AT,
    )
    moved = act(engine, "case-cancellation", case, request, at=AT)
    assert moved.state == "approval_requested"
    assert len(engine.entity("case-cancellation", case)["facts"]["contact_attempts"]) == 5


def test_cx1_forever_waiting_is_refused_as_abolished(engine: FlowEngine) -> None:
    """CX-1: 永遠待ち is abolished; setting it is refused and says so."""
    result = refused_without_change(
        engine, "case-cancellation", "CASE-2", {"type": "set_forever_waiting"}, at=AT
    )
    assert result.refusal is not None and result.refusal["code"] == "abolished_state"
    assert "すでに廃止" in result.refusal["message"]["ja"]
    assert engine.entity("case-cancellation", "CASE-2")["state"]["id"] == "in_progress"


def test_cx3_cx4_cx5_cx7_the_approval_flow_takes_every_required_step(engine: FlowEngine) -> None:
    """CX-4 even before the policy meeting a cancellation goes through approval; CX-3 the
    customer's intent; CX-5 approver, 経企 request, 経企 decision; CX-7 phone record only
    without any mail."""
    case = "CASE-3"
    skip = refused_without_change(
        engine,
        "case-cancellation",
        case,
        {
            "type": "planning_decide",
            "checked_cancellation": True,
            "checked_fee": True,
            "checked_apportionment": True,
            "completion_date": "2024-09-20",
            "fee": 0,
        },
        at=AT,
    )
    assert skip.refusal is not None and skip.refusal["code"] == "event_not_allowed"
    checks = {"checked_cancellation": True, "checked_fee": True, "checked_apportionment": True}
    steps: list[tuple[dict[str, Any], str]] = [
        (
            {
                "type": "request_cancellation",
                "kind": "キャンセル",
                "intent_confirmed": True,
                "intent_via": "mail",
                "reason": "方針MTG前",
            },
            "approval_requested",
        ),
        ({"type": "approver_approve", **checks, "comp_report": True}, "approver_approved"),
        (
            {
                "type": "request_planning_decision",
                "personal_mail": True,
                "cc_case_approver": True,
                "cc_assignee": True,
                "intent_proof": "phone_record",
                "customer_has_no_mail": True,
            },
            "planning_review",
        ),
        (
            {"type": "planning_decide", **checks, "completion_date": "2024-09-21", "fee": 45000},
            "cancelled",
        ),
    ]
    for event, state in steps:
        assert act(engine, "case-cancellation", case, event, at=AT).state == state
    last = engine.history("case-cancellation", case)[-1]
    assert [a["code"] for a in last.actions] == [
        "TELL_CLIENT_BY_MAIL",
        "SEND_CANCELLATION_INVOICE",
        "BOOK_COMPLETION_PERFORMANCE",
        "RETURN_OR_DISPOSE_DOCUMENTS",
    ]
    assert last.facts["invoice_due_by"] == "2024-10-04"
    # CX-5 (4): each step was taken by another person, and the history says who.
    assert [
        r.actor["roles"] if r.actor else None for r in engine.history("case-cancellation", case)
    ] == [
        ["担当者"],
        ["案件決裁者"],
        ["担当者"],
        ["経企"],
    ]


def test_cx6_one_cancellation_in_a_bulk_project_ends_with_the_case_approver(
    engine: FlowEngine,
) -> None:
    """CX-6: a single cancellation inside a bulk project is the case approver's alone."""
    case = "CASE-4"
    act(engine, "case-cancellation", case, {"type": "update_case", "bulk_project": "エコ"}, at=AT)
    act(
        engine,
        "case-cancellation",
        case,
        {
            "type": "request_cancellation",
            "kind": "キャンセル",
            "scope": "single",
            "intent_confirmed": True,
            "intent_via": "mail",
            "reason": "個別",
        },
        at=AT,
    )
    result = act(
        engine,
        "case-cancellation",
        case,
        {
            "type": "approver_approve",
            "checked_cancellation": True,
            "checked_fee": True,
            "checked_apportionment": True,
            "comp_report": True,
            # the approver decides what 経企 would: completion date, fee, the intent in writing
            "completion_date": "2024-09-20",
            "fee": 0,
            "intent_proof": "mail",
        },
        at=AT,
    )
    assert result.state == "cancelled_by_approver"
    facts = engine.entity("case-cancellation", case)["facts"]
    assert (facts["decided_by"], facts["fee"]) == ("案件決裁者", 0)


# -- the API's contract ----------------------------------------------------------------------


def test_an_event_id_seen_before_returns_its_first_move_instead_of_moving_again(
    engine: FlowEngine,
) -> None:
    act(engine, "claim-status", "EST-9", EXCLUDE, at=AT, event_id="req-0")
    first = act(engine, "claim-status", "EST-9", {"type": "claim"}, at=AT, event_id="req-1")
    again = act(engine, "claim-status", "EST-9", {"type": "claim"}, at=AT, event_id="req-1")
    assert first.allowed and again.allowed
    assert again.to_dict()["replayed"] is True
    assert again.to_dict()["decision_id"] == first.to_dict()["decision_id"]
    assert len(engine.history("claim-status", "EST-9")) == 2  # the exclude and one claim


def test_an_event_id_seen_before_with_another_event_or_actor_is_a_conflict_not_a_replay(
    engine: FlowEngine,
) -> None:
    """Answering it with the first move would tell the caller its new event was applied."""
    engine.apply("claim-status", "EST-8", EXCLUDE, actor=DEALER, at=AT, event_id="r-0")
    first = {"type": "claim", "detail": "x"}
    engine.apply("claim-status", "EST-8", first, actor=DEALER, at=AT, event_id="r")
    for event, actor in [
        ({"type": "cancel"}, DEALER),  # another event
        ({"type": "claim", "detail": "y"}, DEALER),  # the same type, another field
        ({"type": "claim", "detail": "x"}, {**DEALER, "id": "dealer-9"}),  # another actor
        # the same actor id holding other roles: the roles are what allowed the move
        ({"type": "claim", "detail": "x"}, {**DEALER, "roles": ["販売店", "オートックワン"]}),
    ]:
        with pytest.raises(InputError) as caught:
            engine.apply("claim-status", "EST-8", event, actor=actor, at=AT, event_id="r")
        [problem] = caught.value.diagnostics
        assert (problem.code, problem.pointer) == ("event_id_conflict", "/event_id")
        assert "event id 'r' was used by another event of this entity (claim at " in problem.message
    # the same event again, from the same actor (another name shown beside its id), later
    # and without its at: the first move
    same = {**DEALER, "name": "販売店の担当"}
    again = engine.apply(
        "claim-status", "EST-8", {"type": "claim", "detail": "x"}, actor=same, event_id="r"
    )
    assert again.to_dict()["replayed"] is True
    assert len(engine.history("claim-status", "EST-8")) == 2  # the exclude and the claim


def test_an_invalid_event_is_refused_with_a_json_pointer_and_nothing_is_stored(
    engine: FlowEngine,
) -> None:
    with pytest.raises(InputError) as caught:
        act(engine, "claim-status", "EST-5", {"type": "reject", "reson": "x"}, at=AT)
    assert caught.value.diagnostics[0].pointer == "/event/reson"
    assert caught.value.diagnostics[0].hint == "did you mean 'reason'?"
    with pytest.raises(InputError) as unknown:
        act(engine, "claim-status", "EST-5", {"type": "claims"}, at=AT)
    assert unknown.value.diagnostics[0].pointer == "/event/type"
    with pytest.raises(InputError):
        act(engine, "claim-status", "", {"type": "claim"}, at=AT)
    assert engine.store.load("claim-status", "EST-5") is None
    assert engine.store.refusals("claim-status", "EST-5") == []


def test_a_decision_policy_or_an_unknown_policy_is_a_usage_error(engine: FlowEngine) -> None:
    with pytest.raises(UsageError) as not_flow:
        act(engine, "cancellation-fees", "X", {"type": "claim"}, at=AT)
    assert not_flow.value.code == "not_a_flow"
    with pytest.raises(UsageError) as unknown:
        act(engine, "claim-statuz", "X", {"type": "claim"}, at=AT)
    assert unknown.value.diagnostics[0].hint == "did you mean 'claim-status'?"


def test_a_stored_state_the_policy_no_longer_declares_is_an_error_not_a_guess(
    engine: FlowEngine,
) -> None:
    act(engine, "claim-status", "EST-6", EXCLUDE, at=AT)
    act(engine, "claim-status", "EST-6", {"type": "claim"}, at=AT)
    with engine.store.backend.write() as session:
        session.execute("UPDATE flow_entities SET state = 'vanished' WHERE entity_id = 'EST-6'")
    with pytest.raises(EvaluationError) as caught:
        act(engine, "claim-status", "EST-6", {"type": "cancel"}, at=AT)
    assert caught.value.code == "stored_state_unknown"


def test_replaying_a_history_reaches_the_stored_entity(engine: FlowEngine) -> None:
    reject = {"type": "reject", "reason": "r"}
    for event in (EXCLUDE, {"type": "claim"}, {"type": "start_review"}, reject):
        assert act(engine, "claim-status", "EST-7", event, at=AT).allowed
    policy = engine.policy("claim-status")
    snapshot, differences = replay(policy, engine.history("claim-status", "EST-7"))
    assert differences == []
    assert snapshot == engine.store.load("claim-status", "EST-7")


# -- actors, roles and consulted decisions -----------------------------------------------------

DEALER = {"id": "dealer-1", "roles": ["販売店"], "name": "横浜店 山田"}
OPERATOR = {"id": "op-1", "roles": ["オートックワン"]}


def test_ex6_every_move_and_refusal_records_its_actor(engine: FlowEngine) -> None:
    engine.apply("claim-status", "EST-20", EXCLUDE, actor=DEALER, at=AT)
    engine.apply("claim-status", "EST-20", {"type": "claim"}, actor=DEALER, at=AT)
    refused = refused_without_change(
        engine, "claim-status", "EST-20", {"type": "start_review"}, actor=DEALER, at=AT
    )
    assert refused.refusal is not None and refused.refusal["code"] == "role_not_allowed"
    assert refused.refusal["roles"] == ["オートックワン"]
    assert refused.to_dict()["actor"] == DEALER
    engine.apply("claim-status", "EST-20", {"type": "start_review"}, actor=OPERATOR, at=AT)
    rows = engine.history("claim-status", "EST-20")
    assert [r.actor for r in rows] == [DEALER, DEALER, OPERATOR]
    assert engine.refusals("claim-status", "EST-20")[0]["actor"] == DEALER
    view = engine.entity("claim-status", "EST-20")
    assert view["allowed_roles"] == {"approve": ["オートックワン"], "reject": ["オートックワン"]}


@pytest.mark.parametrize(
    ("actor", "pointers"),
    [
        (None, {"/actor"}),
        ("dealer-1", {"/actor"}),
        ({"id": "d", "roles": []}, {"/actor/roles"}),
        ({"id": "", "roles": ["販売店"], "nmae": "x"}, {"/actor/id", "/actor/nmae"}),
        ({"id": "d", "roles": ["販売店", "販売店", "*"]}, {"/actor/roles/1", "/actor/roles/2"}),
    ],
)
def test_an_event_without_a_valid_actor_is_an_input_error_and_nothing_is_stored(
    engine: FlowEngine, actor: Any, pointers: set[str]
) -> None:
    with pytest.raises(InputError) as caught:
        engine.apply("claim-status", "EST-21", {"type": "claim"}, actor=actor, at=AT)
    assert {d.pointer for d in caught.value.diagnostics} == pointers
    assert engine.store.load("claim-status", "EST-21") is None
    assert engine.store.refusals("claim-status", "EST-21") == []


def test_replay_re_decides_each_move_as_its_actor(engine: FlowEngine) -> None:
    engine.apply("claim-status", "EST-22", EXCLUDE, actor=DEALER, at=AT)
    engine.apply("claim-status", "EST-22", {"type": "claim"}, actor=DEALER, at=AT)
    engine.apply("claim-status", "EST-22", {"type": "start_review"}, actor=OPERATOR, at=AT)
    rows = engine.history("claim-status", "EST-22")
    snapshot, differences = replay(engine.policy("claim-status"), rows)
    assert differences == [] and snapshot.state == "under_review"
    # a history row whose actor lost the role is no longer the same move
    swapped = [rows[0], rows[1], dataclasses.replace(rows[2], actor=DEALER)]
    _, differences = replay(engine.policy("claim-status"), swapped)
    assert differences and "now refused" in differences[0] and "role_not_allowed" in differences[0]


ORDER = {
    "order": {
        "id": "O-1",
        "total": 5980,
        "sequence": 1,
        "customer": {"id": "C-10021"},
        "payment": {"method": "credit_card"},
        "shipping": {"cod_available": True},
    }
}
SYSTEM = {"id": "system", "roles": ["システム"]}


def test_ho1_a_check_consults_order_holds_and_the_move_keeps_its_answer(
    engine: FlowEngine,
) -> None:
    result = engine.apply(
        "order-hold-status", "O-1", {"type": "check", "facts": ORDER}, actor=SYSTEM, at=AT
    )
    assert result.state == "held"
    (row,) = engine.history("order-hold-status", "O-1")
    decision = row.event["decision"]
    assert decision["policy"]["id"] == "order-holds"
    assert decision["outcome"]["held"] is True
    assert [r["code"] for r in decision["reasons"]] == ["BLACKLISTED_CUSTOMER"]
    assert row.facts["last_decision"]["decision_id"] == decision["decision_id"]
    # replay consults again: the same move
    order_holds = engine.project.policy("order-holds")
    consulted = {"order-holds": (order_holds, engine.project.data_for(order_holds))}
    _, differences = replay(engine.policy("order-hold-status"), [row], consulted=consulted)
    assert differences == []


def test_an_event_that_may_not_move_consults_nothing(engine: FlowEngine) -> None:
    """A role refusal comes before the consulted policy is asked: bad facts from the wrong
    role are refused for the role, not reported as invalid facts."""
    result = refused_without_change(
        engine,
        "order-hold-status",
        "O-2",
        {"type": "check", "facts": {"order": {"total": -1}}},
        actor={"id": "shop-1", "roles": ["ショップ"]},
        at=AT,
    )
    assert result.refusal is not None and result.refusal["code"] == "role_not_allowed"
    with pytest.raises(InputError) as caught:
        engine.apply(
            "order-hold-status",
            "O-2",
            {"type": "check", "facts": {"order": {"total": -1}}},
            actor=SYSTEM,
            at=AT,
        )
    assert "/event/facts/order/total" in {d.pointer for d in caught.value.diagnostics}


def test_a_problem_of_the_consulted_settings_says_settings_not_facts(engine: FlowEngine) -> None:
    with pytest.raises(InputError) as caught:
        engine.apply(
            "order-hold-status",
            "O-3",
            {"type": "check", "facts": ORDER, "settings": {"np_ng_action": 4}},
            actor=SYSTEM,
            at=AT,
        )
    [problem] = caught.value.diagnostics
    assert problem.pointer == "/event/settings/np_ng_action"
    assert problem.message.endswith("(in the settings given to 'order-holds')")


def test_a_consulted_policy_that_is_not_served_fails_the_event(store: FlowStore) -> None:
    project = shipped_project()

    class WithoutOrderHolds:
        def policy(self, policy_id: str) -> Any:
            if policy_id == "order-holds":
                raise UsageError([])
            return project.policy(policy_id)

        def data_for(self, policy: Any) -> Any:
            return project.data_for(policy)

    engine = FlowEngine(WithoutOrderHolds(), store)
    with pytest.raises(EvaluationError) as caught:
        engine.apply(
            "order-hold-status", "O-3", {"type": "check", "facts": ORDER}, actor=SYSTEM, at=AT
        )
    assert caught.value.code == "consulted_policy_missing"
    assert engine.store.load("order-hold-status", "O-3") is None


def test_an_answer_that_does_not_fit_what_the_flow_compiled_against_is_an_error(
    engine: FlowEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.flow import decide as flow_decide

    real = flow_decide.decide

    def drifted(*args: Any, **kwargs: Any) -> Any:
        decision = real(*args, **kwargs)
        return dataclasses.replace(decision, outcome={**decision.outcome, "held": "yes"})

    monkeypatch.setattr(flow_decide, "decide", drifted)
    with pytest.raises(EvaluationError) as caught:
        engine.apply(
            "order-hold-status", "O-4", {"type": "check", "facts": ORDER}, actor=SYSTEM, at=AT
        )
    assert caught.value.code == "decision_answer_invalid"
    assert caught.value.diagnostics[0].pointer == "/event/decision/outcome/held"


def test_an_answer_without_an_outcome_field_the_flow_compiled_against_is_an_error(
    engine: FlowEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """order-holds published with `payment_switched_to_cod` renamed: the flow read the field
    as null and moved without the SWITCHED_TO_COD action it owed (HB-7), every policy
    reported valid. Every outcome field is present in an answer, null when unset."""
    from engine.flow import decide as flow_decide

    real = flow_decide.decide

    def renamed(*args: Any, **kwargs: Any) -> Any:
        decision = real(*args, **kwargs)
        outcome = dict(decision.outcome)
        outcome["switched_to_cod"] = outcome.pop("payment_switched_to_cod")
        return dataclasses.replace(decision, outcome=outcome)

    answered = engine.apply(
        "order-hold-status", "O-5", {"type": "check", "facts": ORDER}, actor=SYSTEM, at=AT
    )
    assert answered.allowed  # the answer as compiled against: every field, nulls included
    monkeypatch.setattr(flow_decide, "decide", renamed)
    with pytest.raises(EvaluationError) as caught:
        engine.apply(
            "order-hold-status", "O-6", {"type": "check", "facts": ORDER}, actor=SYSTEM, at=AT
        )
    assert caught.value.code == "decision_answer_invalid"
    [problem] = caught.value.diagnostics
    assert problem.pointer == "/event/decision/outcome/payment_switched_to_cod"
    assert "does not fit what this flow was compiled against" in str(problem.message)
    assert engine.store.load("order-hold-status", "O-6") is None


def test_an_answer_may_lack_an_outcome_field_the_flow_never_reads(
    engine: FlowEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the fields the flow reads are required: a consulted revision without one it
    never reads (a rollback to a revision before the field was added) breaks no event."""
    from engine.flow import decide as flow_decide
    from engine.flow.model import flow_of

    call = flow_of(engine.policy("order-hold-status")).events["check"].decide
    assert call is not None
    required = call.answer.schema["properties"]["outcome"]["required"]
    assert "payment_switched_to_cod" in required and "held_by_hand" not in required
    real = flow_decide.decide

    def older(*args: Any, **kwargs: Any) -> Any:
        decision = real(*args, **kwargs)
        outcome = {k: v for k, v in decision.outcome.items() if k != "held_by_hand"}
        return dataclasses.replace(decision, outcome=outcome)

    monkeypatch.setattr(flow_decide, "decide", older)
    moved = engine.apply(
        "order-hold-status", "O-7", {"type": "check", "facts": ORDER}, actor=SYSTEM, at=AT
    )
    assert moved.allowed and moved.state == "held"


def test_an_entity_that_other_writers_keep_moving_is_a_retry_later_and_nothing_is_stored(
    engine: FlowEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine.apply("claim-status", "E-BUSY", EXCLUDE, actor=DEALER, at=AT, event_id="ev-0")
    before = stored(engine, "claim-status", "E-BUSY")
    monkeypatch.setattr(engine.store, "commit_move", lambda *args, **kwargs: False)
    with pytest.raises(RetryLater) as caught:
        engine.apply(
            "claim-status", "E-BUSY", {"type": "claim"}, actor=DEALER, at=AT, event_id="ev-1"
        )
    assert caught.value.code == "flow_contention"
    assert "gave up after 20 attempts" in caught.value.diagnostics[0].message
    assert stored(engine, "claim-status", "E-BUSY") == before
    assert before[0].state == "not_claimed" and before[0].version == 1


@pytest.mark.parametrize("at", [5, True, {"at": AT}, ["2024-09-20"]])
def test_an_at_that_is_not_a_text_is_refused_as_such_not_as_its_python_text(
    engine: FlowEngine, at: object
) -> None:
    with pytest.raises(InputError) as caught:
        engine.apply("claim-status", "EST-22", {"type": "claim"}, actor=DEALER, at=at)
    [problem] = caught.value.diagnostics
    assert (problem.code, problem.pointer) == ("at_invalid", "/at")
    assert problem.message == "'at' must be a date-time text"  # was: "5" is not a valid ...
