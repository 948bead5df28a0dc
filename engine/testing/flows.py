"""Run the YAML test cases of flow policies: `steps:`, each an event with its own expect.

    - name: a re-claim needs a detailed reason
      refs: [EX-6]
      entity: {state: rejected}                     # optional: where the entity starts
      actor: {id: dealer-1, roles: [販売店]}        # who sends each step (or per step)
      steps:
        - event: {type: claim}
          expect: {refused: true, code: missing_field, message: 詳細理由}
        - event: {type: claim, detail: 重複でした}
          expect: {state: requested, transition: reclaim, facts: {claims: 1}}

Each case runs against a fresh in-memory store through the same FlowEngine the API uses.
After every refused step the runner checks that the stored entity and its history of
moves are exactly as before: a refusal changes nothing, in every case that has one.
"""

from __future__ import annotations

from typing import Any

from engine.core.errors import KimariError
from engine.core.i18n import Msg, Rendered
from engine.core.jsonvalue import quoted, to_json_value
from engine.flow.engine import FlowEngine, FlowResult
from engine.flow.model import flow_of
from engine.project.project import Project
from engine.store.flows import FlowStore
from engine.store.sqlite import MEMORY
from engine.testing.cases import (
    Case,
    CaseResult,
    case_data,
    compare_error,
    deep_merge,
    same_value,
)

ENTITY_ID = "case"


def run_flow_case(case: Case, project: Project, backend: str = "durable") -> CaseResult:
    result = CaseResult(
        case.file, case.name, case.location, case.refs, True, policy_id=case.policy.id
    )
    if not case.spec.get("steps"):
        result.failures.append(Msg("a flow case needs 'steps' (events with their expect)"))
        result.passed = False
        return result
    store = FlowStore(MEMORY)
    try:
        # Explained, like a decision case: durable_rules is checked against the reference
        # evaluator at every step, not only at the refusals.
        engine = FlowEngine(project, store, backend=backend, explain=True)
        if not _seed(case, engine, result):
            for index, step in enumerate(case.spec["steps"]):
                _step(case, engine, index, step, result)
    finally:
        store.close()
    result.passed = not result.failures
    return result


def _seed(case: Case, engine: FlowEngine, result: CaseResult) -> bool:
    """Import the case's starting entity; True if that failed (reported)."""
    entity = case.spec.get("entity")
    if not entity:
        return False
    flow = flow_of(case.policy)
    try:
        engine.import_entity(
            case.policy.id, ENTITY_ID, entity.get("state", flow.initial), entity.get("facts")
        )
    except KimariError as exc:
        result.failures.append(Msg("entity: {errors}", errors=_rendered(exc)))
        return True
    return False


def _step(
    case: Case,
    engine: FlowEngine,
    index: int,
    step: dict[str, Any],
    result: CaseResult,
) -> None:
    expect = step.get("expect", {})
    event = step["event"]
    label = Msg(
        "step {number} ({name})", number=index + 1, name=step.get("name") or event.get("type", "?")
    )
    store = engine.store
    before = store.load(case.policy.id, ENTITY_ID)
    moves_before = len(store.history(case.policy.id, ENTITY_ID))
    failures: list[str] = []
    try:
        outcome = engine.apply(
            case.policy.id,
            ENTITY_ID,
            event,
            actor=step.get("actor", case.spec.get("actor")),
            at=step.get("at", case.spec.get("at")),
            # A step's settings merge over the case's; without any, the case's apply.
            settings=(
                deep_merge(case.spec.get("settings"), step["settings"])
                if "settings" in step
                else case.spec.get("settings")
            ),
            event_id=step.get("event_id"),
            data=case_data(case, engine.project) if case.spec.get("data") else None,
        )
    except KimariError as exc:
        probe = CaseResult(case.file, case.name, case.location, [], True)
        compare_error(probe, expect, exc)
        failures.extend(probe.failures)
        outcome = None
    if outcome is not None:
        if "error" in expect:
            failures.append(
                Msg(
                    "expected error {code}, but the event was decided",
                    code=expect["error"].get("code"),
                )
            )
        _compare(outcome, expect, failures)
        move = outcome.move
        if outcome.allowed and move is not None and move.transition is not None:
            result.fired.append(move.transition.id)
        elif move is not None and move.refusal and "transition" in move.refusal:
            result.fired.append(move.refusal["transition"])  # matched, into an abolished state
    if outcome is None or not outcome.allowed:
        after = store.load(case.policy.id, ENTITY_ID)
        moves_after = len(store.history(case.policy.id, ENTITY_ID))
        if after != before or moves_after != moves_before:
            failures.append(
                Msg("a refused or invalid event changed the stored entity or its history")
            )
    result.failures.extend(Msg("{step}: {failure}", step=label, failure=f) for f in failures)


def _compare(outcome: FlowResult, expect: dict[str, Any], failures: list[str]) -> None:
    body = outcome.to_dict()
    refused = not outcome.allowed
    wants_refusal = bool(expect.get("refused")) or "code" in expect
    if refused and not wants_refusal:
        failures.append(Msg("refused: {message}", message=body["refusal"]["message"]["ja"]))
        return
    if not refused and wants_refusal:
        failures.append(
            Msg(
                "expected a refusal, but it moved by {transition} to {state}",
                transition=body["transition"]["id"],
                state=body["state"]["after"]["id"],
            )
        )
        return
    if "refused" in expect and not expect["refused"] and refused:
        failures.append(Msg("expected the move to be allowed"))
    if "state" in expect and body["state"]["after"]["id"] != expect["state"]:
        failures.append(
            Msg(
                "state: expected {expected}, got {actual}",
                expected=expect["state"],
                actual=body["state"]["after"]["id"],
            )
        )
    if "transition" in expect:
        got = (body["transition"] or {}).get("id")
        if got != expect["transition"]:
            failures.append(
                Msg(
                    "transition: expected {expected}, got {actual}",
                    expected=expect["transition"],
                    actual=got,
                )
            )
    if "code" in expect and (body["refusal"] or {}).get("code") != expect["code"]:
        failures.append(
            Msg(
                "code: expected {expected}, got {actual}",
                expected=expect["code"],
                actual=(body["refusal"] or {}).get("code"),
            )
        )
    if "message" in expect:
        message = (body["refusal"] or {}).get("message") or body["message"] or {}
        if not any(expect["message"] in text for text in message.values()):
            failures.append(
                Msg(
                    "message: expected it to contain {expected}, got {actual}",
                    expected=quoted(expect["message"]),
                    actual=quoted(message),
                )
            )
    if "message_not" in expect:
        message = (body["refusal"] or {}).get("message") or body["message"] or {}
        if any(expect["message_not"] in text for text in message.values()):
            failures.append(
                Msg(
                    "message: expected it not to contain {expected}",
                    expected=quoted(expect["message_not"]),
                )
            )
    if "actions" in expect:
        codes = [a["code"] for a in body["actions"]]
        if codes != expect["actions"]:
            failures.append(
                Msg(
                    "actions: expected {expected}, got {actual}",
                    expected=quoted(expect["actions"]),
                    actual=quoted(codes),
                )
            )
    for code, wanted in (expect.get("details") or {}).items():
        found = next((a for a in body["actions"] if a["code"] == code), None)
        if found is None:
            failures.append(Msg("details: no action {code}", code=code))
            continue
        for key, value in wanted.items():
            got = (found.get("details") or {}).get(key)
            if not same_value(value, got):
                failures.append(
                    Msg(
                        "details of {code}: {key}: expected {expected}, got {actual}",
                        code=code,
                        key=key,
                        expected=quoted(value),
                        actual=quoted(got),
                    )
                )
    if "replayed" in expect and body["replayed"] != expect["replayed"]:
        failures.append(
            Msg(
                "replayed: expected {expected}, got {actual}",
                expected=expect["replayed"],
                actual=body["replayed"],
            )
        )
    for name, value in (expect.get("facts") or {}).items():
        got = body["facts"].get(name)
        if not same_value(value, got):
            failures.append(
                Msg(
                    "facts.{name}: expected {expected}, got {actual}",
                    name=name,
                    expected=quoted(to_json_value(value)),
                    actual=quoted(got),
                )
            )


def _rendered(exc: KimariError) -> Rendered:
    """The error's diagnostics, one per line, in the language the report is shown in."""
    return Rendered(lambda lang: "\n".join(d.render(lang) for d in exc.diagnostics) or str(exc))


__all__ = ["run_flow_case"]
