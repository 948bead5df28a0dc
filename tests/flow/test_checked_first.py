"""What a flow event is checked for before what (docs/flows.md):

- an idempotent retry (an `event_id` this entity has already applied) is validated as a
  first try is: a bad `at`, event, actor or setting is the same 422 with or without a used
  id, never the stored move; a valid retry still answers the stored move, and another valid
  event under the used id is still `event_id_conflict`;
- a refusal by the flow's shape (a final state, an event the state does not take, an actor
  without the roles) is answered before any derived value is computed: the refusal is the
  one it always was, and a derived value that would fail (or cost seconds on an entity with
  thousands of contact attempts) is never read for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.core.errors import Diagnostic, EvaluationError, InputError
from engine.core.i18n import Msg
from engine.core.jsonvalue import JST
from engine.flow.decide import decide_move
from engine.flow.engine import FlowEngine, FlowResult
from engine.runtime import evaluate
from engine.service.flows import FlowService
from engine.store.flows import EntityState, FlowStore
from tests.strategies import shipped_project

AT = "2024-09-20T10:00:00+09:00"
EXCLUDE = {"type": "exclude", "exclusion_reason": "重複"}
CLAIM = {"type": "claim", "detail": "同一会員IDから2件"}
DEALER = {"id": "dealer-7", "roles": ["販売店"]}
OPERATOR = {"id": "op-1", "roles": ["オートックワン"]}
STAFF = {"id": "staff-1", "roles": ["担当者"]}
NOBODY = {"id": "a", "roles": ["nobody"]}
BACKENDS = ("durable", "python")


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[FlowStore]:
    store = FlowStore(tmp_path / "flows.sqlite3")
    yield store
    store.close()


@pytest.fixture()
def engine(store: FlowStore) -> FlowEngine:
    return FlowEngine(shipped_project(), store)


def problems(call: Callable[[], Any]) -> list[tuple[str, str | None, str]]:
    """The 422's problems: code, pointer and message of each."""
    with pytest.raises(InputError) as caught:
        call()
    return [(d.code, d.pointer, d.message) for d in caught.value.diagnostics]


def claimed(engine: FlowEngine, entity: str) -> FlowResult:
    """An estimate excluded, then claimed under the event id 'r'."""
    engine.apply("claim-status", entity, EXCLUDE, actor=DEALER, at=AT, event_id="r-0")
    first = engine.apply("claim-status", entity, CLAIM, actor=DEALER, at=AT, event_id="r")
    assert first.allowed and first.state == "requested"
    return first


# -- an idempotent retry is validated as a first try is ---------------------------------------

# What the retry changes in the first try's body, and the problem both answer.
INVALID = [
    pytest.param({"at": "garbage"}, ("at_invalid", "/at"), id="at-garbage"),
    pytest.param({"at": 5}, ("at_invalid", "/at"), id="at-not-a-text"),
    pytest.param({"at": datetime(2024, 9, 20, 10)}, ("at_invalid", "/at"), id="at-naive"),
    pytest.param({"settings": {"zzz": 1}}, ("unknown_setting", "/settings/zzz"), id="setting"),
    pytest.param({"event": {**CLAIM, "detial": "x"}}, (None, "/event/detial"), id="event-field"),
    pytest.param({"event": {"type": "claims"}}, ("unknown_event", None), id="event-type"),
    pytest.param({"actor": {"id": "dealer-7", "roles": []}}, ("actor_invalid", None), id="actor"),
    # several problems: the first the pipeline meets, in its order (at, event, settings)
    pytest.param(
        {"at": "garbage", "event": {"type": "claims"}, "settings": {"zzz": 1}},
        ("at_invalid", "/at"),
        id="at-first",
    ),
    pytest.param(
        {"event": {"type": "claims"}, "settings": {"zzz": 1}},
        ("unknown_event", None),
        id="event-before-settings",
    ),
]


@pytest.mark.parametrize(("change", "expected"), INVALID)
def test_an_invalid_retry_gets_the_422_an_invalid_first_try_gets(
    engine: FlowEngine, change: dict[str, Any], expected: tuple[str | None, str | None]
) -> None:
    first = claimed(engine, "EST-1")
    body = {"actor": DEALER, "at": AT, **change}
    event = body.pop("event", CLAIM)

    def send(**kwargs: Any) -> FlowResult:
        return engine.apply("claim-status", "EST-1", event, **body, **kwargs)

    retried = problems(lambda: send(event_id="r"))  # the used id
    assert retried == problems(lambda: send(event_id="fresh"))  # a new id
    assert retried == problems(lambda: send())  # no id
    code, pointer = expected
    assert code is None or retried[0][0] == code, retried
    assert pointer is None or retried[0][1] == pointer, retried
    # nothing was applied, and the id still answers its first move
    assert len(engine.history("claim-status", "EST-1")) == 2
    again = engine.apply("claim-status", "EST-1", CLAIM, actor=DEALER, at=AT, event_id="r")
    assert again.to_dict()["replayed"] is True
    assert again.to_dict()["decision_id"] == first.to_dict()["decision_id"]


@pytest.mark.parametrize(
    ("settings", "code"),
    [({"sg_window_days": 0}, "setting_invalid"), ({"sg_window_days": "x"}, "setting_invalid")],
)
def test_a_retry_with_an_invalid_setting_value_is_the_422_of_a_first_try(
    engine: FlowEngine, settings: dict[str, Any], code: str
) -> None:
    attempt = {"type": "record_contact_attempt", "reached": False}
    engine.apply("case-cancellation", "C-1", attempt, actor=STAFF, at=AT, event_id="c")
    retried = problems(
        lambda: engine.apply(
            "case-cancellation", "C-1", attempt, actor=STAFF, at=AT, settings=settings, event_id="c"
        )
    )
    first_try = problems(
        lambda: engine.apply(
            "case-cancellation", "C-1", attempt, actor=STAFF, at=AT, settings=settings
        )
    )
    assert retried == first_try and retried[0][:2] == (code, "/settings/sg_window_days")
    assert len(engine.history("case-cancellation", "C-1")) == 1
    # the same retry with a valid value: the stored move (a replay reads no settings)
    again = engine.apply(
        "case-cancellation",
        "C-1",
        attempt,
        actor=STAFF,
        settings={"sg_window_days": 30},
        event_id="c",
    )
    assert again.to_dict()["replayed"] is True


@pytest.mark.parametrize(
    "at",
    [
        AT,
        "2024-09-20T01:00:00Z",  # the same instant in another offset
        "2024-09-20T01:00:00+00:00",
        datetime(2024, 9, 20, 10, tzinfo=JST),
        "2024-09-21T08:00:00+09:00",  # later: a retry's time is its own (docs/flows.md)
        None,  # a retry without one is timed when it arrives
    ],
)
def test_a_valid_retry_still_answers_the_stored_move(engine: FlowEngine, at: Any) -> None:
    first = claimed(engine, "EST-2")
    again = engine.apply(
        "claim-status",
        "EST-2",
        dict(CLAIM),
        actor={**DEALER, "name": "横浜店 山田"},  # the name only shows the actor
        at=at,
        settings={},
        event_id="r",
    )
    answer = again.to_dict()
    assert again.allowed and answer["replayed"] is True
    assert answer["decision_id"] == first.to_dict()["decision_id"]
    assert answer["at"] == AT  # the stored move, as it was made
    assert len(engine.history("claim-status", "EST-2")) == 2


def test_an_event_time_field_given_in_another_offset_is_the_same_event(
    engine: FlowEngine,
) -> None:
    """The event is compared as stored (instants in Japan time): the same instant written
    in another offset is the same event, another instant is another event."""
    send = {"type": "send", "sent_at": "2024-09-20T10:00:00+09:00"}
    first = engine.apply("lead-follow-up", "L-1", send, actor=OPERATOR, at=AT, event_id="s")
    assert first.allowed
    same = {"type": "send", "sent_at": "2024-09-20T01:00:00Z"}
    again = engine.apply("lead-follow-up", "L-1", same, actor=OPERATOR, at=AT, event_id="s")
    assert again.to_dict()["replayed"] is True
    other = {"type": "send", "sent_at": "2024-09-20T11:00:00+09:00"}
    conflict = problems(
        lambda: engine.apply("lead-follow-up", "L-1", other, actor=OPERATOR, event_id="s")
    )
    assert [p[:2] for p in conflict] == [("event_id_conflict", "/event_id")]


def test_another_valid_event_under_a_used_id_is_still_a_conflict(engine: FlowEngine) -> None:
    claimed(engine, "EST-3")
    for event, actor in [
        ({"type": "cancel"}, DEALER),
        ({"type": "claim", "detail": "別の理由"}, DEALER),
        (CLAIM, {"id": "dealer-9", "roles": ["販売店"]}),
    ]:
        with pytest.raises(InputError) as caught:
            engine.apply(
                "claim-status", "EST-3", event, actor=actor, at=AT, settings={}, event_id="r"
            )
        found = [(d.code, d.pointer) for d in caught.value.diagnostics]
        assert found == [("event_id_conflict", "/event_id")]
    # another event that is also invalid: invalid first, as a first try would be
    found = problems(
        lambda: engine.apply(
            "claim-status", "EST-3", {"type": "cancel"}, actor=DEALER, at="x", event_id="r"
        )
    )
    assert [p[:2] for p in found] == [("at_invalid", "/at")]
    assert len(engine.history("claim-status", "EST-3")) == 2


class _Catalog:
    """What FlowService reads from a served snapshot: its policies and their data sets."""

    def __init__(self) -> None:
        self.project = shipped_project()
        self.policies = self.project.policies

    def data_for(self, policy: Any) -> Any:
        return self.project.data_for(policy)


def test_over_http_an_invalid_retry_is_a_422_and_a_valid_one_a_200_replay(
    tmp_path: Path,
) -> None:
    catalog = _Catalog()
    service = FlowService(lambda: catalog, str(tmp_path / "flows.sqlite3"))  # type: ignore[arg-type, return-value]
    try:

        def post(**body: Any) -> tuple[int, dict[str, Any]]:
            status, _, raw = service.event(
                "claim-status", "EST-4", orjson.dumps({"actor": DEALER, "at": AT, **body})
            )
            return status, orjson.loads(raw)

        assert post(event=EXCLUDE, event_id="r-0")[0] == 200
        status, moved = post(event=CLAIM, event_id="r")
        assert (status, moved["replayed"]) == (200, False)
        for change, code in [
            ({"at": "garbage"}, "at_invalid"),
            ({"settings": {"zzz": 1}}, "unknown_setting"),
        ]:
            retried = post(event=CLAIM, event_id="r", **change)
            first_try = post(event=CLAIM, **change)
            assert retried[0] == first_try[0] == 422, retried
            assert retried[1]["errors"] == first_try[1]["errors"]
            assert retried[1]["errors"][0]["code"] == code
        status, again = post(event=CLAIM, event_id="r", at="2024-09-20T01:00:00Z")
        assert (status, again["replayed"], again["decision_id"]) == (
            200,
            True,
            moved["decision_id"],
        )
        status, conflict = post(event={"type": "cancel"}, event_id="r")
        assert (status, conflict["code"]) == (409, "event_id_conflict")
    finally:
        service.close()


# -- a refusal by the flow's shape computes no derived value -----------------------------------


@pytest.fixture()
def derived_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every computation of a policy's derived values (the policy's id), counted."""
    calls: list[str] = []
    compute = evaluate.compute_derived

    def counted(policy: Any, env: Any) -> Any:
        calls.append(policy.id)
        return compute(policy, env)

    monkeypatch.setattr(evaluate, "compute_derived", counted)
    return calls


@pytest.fixture()
def derived_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """Derived values that cannot be computed: reading them is an evaluation error."""

    def failing(policy: Any, env: Any) -> Any:
        raise EvaluationError(
            [Diagnostic("evaluation_error", Msg("derived values read (test stand-in)"))]
        )

    monkeypatch.setattr(evaluate, "compute_derived", failing)


def many_attempts(count: int) -> dict[str, Any]:
    """A case's facts with `count` unsuccessful contact attempts, one an hour."""
    start = datetime(2024, 1, 1, 9, tzinfo=JST)
    return {
        "assignee": "受任担当A",
        "manager": "受任担当A",  # the same person: no mail is needed (CX-2)
        "contact_attempts": [
            {"at": (start + timedelta(hours=i)).isoformat(), "reached": False} for i in range(count)
        ],
    }


SG_REQUEST = {"type": "request_cancellation", "kind": "SGキャンセル", "reason": "連絡不通"}

# The role refusal as the engine gave it before derived values were skipped for it.
ROLE_REFUSAL = {
    "actor": {"id": "a", "roles": ["nobody"]},
    "allowed_events": [
        "update_case",
        "record_contact_attempt",
        "record_mail",
        "request_cancellation",
        "decline_case",
    ],
    "code": "role_not_allowed",
    "event": "request_cancellation",
    "message": {
        "en": "In state 'in progress', 'request the cancellation approval' may be sent by "
        "'case staff' (the roles of a: 'nobody').",
        "ja": "現在の状態「進行中」で「キャンセル承認依頼」を行えるのは"
        "「担当者（受任担当・管理担当）」です（a の役割: 「nobody」）。",
    },
    "roles": ["担当者"],
    "state": {"id": "in_progress", "label": {"en": "in progress", "ja": "進行中"}},
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("explain", [False, True])
def test_a_role_refusal_computes_no_derived_value_and_is_the_same_refusal(
    store: FlowStore, derived_calls: list[str], backend: str, explain: bool
) -> None:
    engine = FlowEngine(shipped_project(), store, backend=backend, explain=explain)
    engine.import_entity("case-cancellation", "C-9", "in_progress", many_attempts(300))
    before = store.load("case-cancellation", "C-9")
    refused = engine.apply("case-cancellation", "C-9", SG_REQUEST, actor=NOBODY, at=AT)
    assert not refused.allowed and refused.refusal == ROLE_REFUSAL
    assert derived_calls == []
    assert refused.move is not None and refused.move.transition is None
    assert store.load("case-cancellation", "C-9") == before
    assert [r["code"] for r in store.refusals("case-cancellation", "C-9")] == ["role_not_allowed"]
    # the other side: an actor who may send it is decided on the derived values
    moved = engine.apply("case-cancellation", "C-9", SG_REQUEST, actor=STAFF, at=AT)
    assert derived_calls == ["case-cancellation"]
    assert moved.allowed and moved.state == "approval_requested"
    assert moved.move is not None and moved.move.transition is not None
    assert moved.move.transition.id == "request-sg-cancel"


# Refusals by the flow's shape, in the documented order: each (state, event, actor) and the
# code it gets; the last rows are refused by guards, which read the derived values.
SHAPE = [
    # a final state before anything else, even for an actor with no role in the flow
    ("claim-status", "approved", {"type": "claim"}, NOBODY, "final_state"),
    ("claim-status", "approved", {"type": "approve"}, OPERATOR, "final_state"),
    # an event the state does not take, before the role
    ("claim-status", "under_review", {"type": "cancel"}, NOBODY, "event_not_allowed"),
    ("case-cancellation", "in_progress", {"type": "approver_approve"}, NOBODY, "event_not_allowed"),
    # the role before missing fields and guards: a dealer approving is told who approves
    ("claim-status", "under_review", {"type": "reject"}, DEALER, "role_not_allowed"),
    ("case-cancellation", "in_progress", SG_REQUEST, NOBODY, "role_not_allowed"),
]
BY_GUARDS = [
    ("claim-status", "under_review", {"type": "reject"}, OPERATOR, "missing_field"),
    ("case-cancellation", "in_progress", SG_REQUEST, STAFF, "condition_not_met"),
]


def decided(policy_id: str, state: str, event: Any, actor: Any, backend: str, explain: bool) -> Any:
    project = shipped_project()
    policy = project.policy(policy_id)
    return decide_move(
        policy,
        EntityState(state, {}),
        event,
        actor=actor,
        at=AT,
        data=project.data_for(policy),
        backend=backend,
        explain=explain,
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("explain", [False, True])
@pytest.mark.parametrize(("policy_id", "state", "event", "actor", "code"), SHAPE)
def test_a_refusal_by_the_flows_shape_never_reads_a_derived_value(
    derived_fails: None,
    policy_id: str,
    state: str,
    event: Any,
    actor: Any,
    code: str,
    backend: str,
    explain: bool,
) -> None:
    move = decided(policy_id, state, event, actor, backend, explain)
    assert move.refusal is not None and move.refusal["code"] == code
    assert move.transition is None and move.state_after.id == state
    assert move.explanation is None  # no guard was evaluated to explain


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("policy_id", "state", "event", "actor", "code"), BY_GUARDS)
def test_a_refusal_by_guards_or_a_move_still_reads_the_derived_values(
    monkeypatch: pytest.MonkeyPatch,
    derived_calls: list[str],
    policy_id: str,
    state: str,
    event: Any,
    actor: Any,
    code: str,
    backend: str,
) -> None:
    move = decided(policy_id, state, event, actor, backend, False)
    assert move.refusal is not None and move.refusal["code"] == code
    assert derived_calls == [policy_id]
    # and a derived value that cannot be computed fails them, as it always did
    monkeypatch.setattr(evaluate, "compute_derived", _failing)
    with pytest.raises(EvaluationError):
        decided(policy_id, state, event, actor, backend, False)
    with pytest.raises(EvaluationError):
        decided("claim-status", "under_review", {"type": "approve"}, OPERATOR, backend, False)


def _failing(policy: Any, env: Any) -> Any:
    raise EvaluationError([Diagnostic("evaluation_error", Msg("derived values read"))])


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"at": "garbage"}, "at_invalid"),
        ({"settings": {"zzz": 1}}, "unknown_setting"),
        ({"event": {"type": "reject", "reson": "x"}}, None),
    ],
)
def test_an_invalid_event_is_an_error_before_it_is_a_refusal(
    derived_calls: list[str], change: dict[str, Any], code: str | None
) -> None:
    """A dealer may not reject: still, an invalid `at`, setting or field is the 422."""
    project = shipped_project()
    args = {"event": {"type": "reject"}, "actor": DEALER, "at": AT, **change}
    found = problems(
        lambda: decide_move(project.policy("claim-status"), EntityState("under_review", {}), **args)
    )
    assert code is None or found[0][0] == code
    assert derived_calls == []
