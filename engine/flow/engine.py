"""Flows with lasting state: apply an event to a stored entity, read its state and history.

    engine = FlowEngine(load("policies"), FlowStore("var/kimari.sqlite3"))
    result = engine.apply("claim-status", "EST-1", {"type": "claim"},
                          actor={"id": "dealer-7", "roles": ["販売店"]},
                          at="2024-09-10T10:00:00+09:00")
    result.allowed, result.to_dict()          # the move (actions, new state) or the refusal
    engine.history("claim-status", "EST-1")   # every move, in order

Each event is decided by durable_rules in a fresh decision (flow/decide.py) and written
with its history row in one transaction (store/flows.py). Events on one entity are
serialised: inside a process by a per-entity lock, across processes and replicas by the
store's compare-and-set on the entity's version (a writer that lost the race decides
again on the new state). Events on different entities never wait for each other's
decisions; only the short commit is serialised, by the store's write discipline
(engine/store/backend.py: the file's lock on SQLite, the entity's on PostgreSQL).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from engine.compile.model import CompiledPolicy, kind_word
from engine.core.errors import Diagnostic, InputError, RetryLater, UsageError
from engine.core.i18n import Msg, Rendered
from engine.core.jsonvalue import quoted, shown, to_json_value
from engine.core.suggest import did_you_mean
from engine.flow.actors import Actor, validate_actor
from engine.flow.decide import Consulted, Move, advance, decide_move, initial_entity
from engine.flow.model import DECISION_FIELD, FlowSpec, flow_of
from engine.runtime.evaluate import resolve_at, resolve_settings
from engine.source.data import Dataset
from engine.store.flows import EntityState, FlowStore, HistoryRow

MAX_ATTEMPTS = 20  # decisions retried when other processes keep moving the same entity
MAX_ENTITY_ID = 200


@dataclass(frozen=True)
class FlowResult:
    """The answer to one event: the move made (stored) or the refusal."""

    policy: CompiledPolicy
    entity_id: str
    version: int  # the entity's version after the event (unchanged when refused)
    move: Move | None = None
    replayed: HistoryRow | None = None  # the stored move of an event id seen before

    @property
    def allowed(self) -> bool:
        return self.replayed is not None or (self.move is not None and self.move.allowed)

    @property
    def state(self) -> str:
        if self.replayed is not None:
            return self.replayed.to_state
        assert self.move is not None
        return self.move.state_after.id

    @property
    def refusal(self) -> dict[str, Any] | None:
        return self.move.refusal if self.move is not None else None

    def to_dict(self) -> dict[str, Any]:
        entity = {"id": self.entity_id, "version": self.version}
        if self.move is not None:
            return {"entity": entity, **self.move.to_dict(), "replayed": False}
        row = self.replayed
        assert row is not None
        flow = flow_of(self.policy)
        return {
            "entity": entity,
            "decision_id": row.decision_id,
            "policy": {"id": self.policy.id, "revision": row.revision},
            "at": row.at,
            "event": row.event,
            "actor": row.actor,
            "allowed": True,
            "state": {"before": _state(flow, row.from_state), "after": _state(flow, row.to_state)},
            "transition": _transition(flow, row.transition),
            "actions": row.actions,
            "message": row.message,
            "recorded": row.recorded,
            "facts": row.facts,
            "refusal": None,
            "replayed": True,
        }


def _transition(flow: FlowSpec, transition_id: str) -> dict[str, Any]:
    transition = flow.transition_by_id.get(transition_id)
    if transition is None:  # a move made by a revision that no longer has it
        return {"id": transition_id}
    out: dict[str, Any] = {"id": transition.id, "refs": list(transition.refs)}
    if transition.label:
        out["label"] = transition.label.to_dict()
    return out


def _state(flow: FlowSpec, state_id: str) -> dict[str, Any]:
    state = flow.states.get(state_id)
    return state.to_dict() if state is not None else {"id": state_id}


class Catalog(Protocol):
    """Where flow policies and their data sets come from: a loaded project, or the
    snapshot a service worker serves right now."""

    def policy(self, policy_id: str) -> CompiledPolicy: ...

    def data_for(self, policy: CompiledPolicy) -> dict[str, Dataset]: ...


class _EntityLocks:
    """One lock per entity while someone uses it: same entity waits, others never do."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._locks: dict[tuple[str, str], list[Any]] = {}

    @contextmanager
    def hold(self, key: tuple[str, str]) -> Iterator[None]:
        with self._mutex:
            entry = self._locks.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._mutex:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._locks[key]


class FlowEngine:
    """Flow policies of a project, with entity state in a FlowStore."""

    def __init__(
        self,
        project: Catalog,
        store: FlowStore,
        *,
        backend: str = "durable",
        explain: bool = False,
        log_refusals: bool = True,
    ) -> None:
        self.project = project
        self.store = store
        self.backend = backend
        self.explain = explain  # every move explained, durable_rules checked against the reference
        self.log_refusals = log_refusals
        self._locks = _EntityLocks()

    def policy(self, policy_id: str) -> CompiledPolicy:
        return flow_policy(self.project, policy_id)

    @contextmanager
    def entity_lock(self, policy_id: str, entity_id: str) -> Iterator[None]:
        """Hold one entity: its events wait; other entities' events do not."""
        with self._locks.hold((policy_id, entity_id)):
            yield

    def apply(
        self,
        policy_id: str,
        entity_id: str,
        event: Any,
        *,
        actor: Actor | Mapping[str, Any] | None = None,
        at: datetime | str | None = None,
        settings: Mapping[str, Any] | None = None,
        event_id: str | None = None,
        data: Mapping[str, Dataset] | None = None,
    ) -> FlowResult:
        """Decide `event`, sent by `actor` ({"id", "roles", "name"?}), for the entity and
        store the move (or log the refusal).

        With `event_id`, a retried event returns the move it made the first time instead
        of being applied twice. Raises InputError (invalid event, actor or entity id, with
        a JSON pointer), UsageError (unknown policy, not a flow), EvaluationError,
        EngineFault, and RetryLater when other writers keep moving the entity (nothing was
        applied).
        """
        policy = self.policy(policy_id)
        check_entity_id(entity_id)
        if event_id is not None:
            check_entity_id(event_id, pointer="/event_id", code="event_id_invalid")
        flow = flow_of(policy)
        data = data if data is not None else self.project.data_for(policy)
        consulted = self.consulted(flow)
        with self.entity_lock(policy.id, entity_id), self.store.hold(policy.id, entity_id):
            for _ in range(MAX_ATTEMPTS):
                if event_id is not None:
                    row = self.store.find_event(policy.id, entity_id, event_id)
                    if row is not None:
                        _check_same_event(policy, row, event, actor, at, settings)
                        return FlowResult(policy, entity_id, row.version, replayed=row)
                stored = self.store.load(policy.id, entity_id)
                if stored is None:
                    check_new_entity_id(entity_id)
                before = stored or initial_entity(flow)
                move = decide_move(
                    policy,
                    before,
                    event,
                    actor=actor,
                    at=at,
                    settings=settings,
                    data=data,
                    backend=self.backend,
                    explain=self.explain,
                    consulted=consulted,
                )
                if move.allowed:
                    after = advance(before, move)
                    if self.store.commit_move(
                        policy.id, entity_id, before, after, move, event_id=event_id
                    ):
                        return FlowResult(policy, entity_id, after.version, move)
                elif not self.log_refusals or self.store.log_refusal(
                    policy.id, entity_id, before, move, event_id=event_id
                ):
                    return FlowResult(policy, entity_id, before.version, move)
        raise RetryLater(
            [
                Diagnostic(
                    "flow_contention",
                    Msg(
                        "entity '{entity}' of '{policy}' kept moving under other writers; gave "
                        "up after {attempts} attempts",
                        entity=entity_id,
                        policy=policy.id,
                        attempts=MAX_ATTEMPTS,
                    ),
                )
            ]
        )

    def consulted(self, flow: FlowSpec) -> Consulted:
        """The decision policies the flow's events consult, as the catalog serves them now
        (with their data sets); one that is not served fails the event that needs it."""
        out: dict[str, tuple[CompiledPolicy, Mapping[str, Dataset]]] = {}
        for event in flow.events.values():
            if event.decide is None or event.decide.policy in out:
                continue
            try:
                found = self.project.policy(event.decide.policy)
            except UsageError:
                continue
            if found.kind == "decision":
                out[found.id] = (found, self.project.data_for(found))
        return out

    def entity(self, policy_id: str, entity_id: str) -> dict[str, Any]:
        """Where the entity stands: state, facts, version, what it may do next."""
        policy = self.policy(policy_id)
        check_entity_id(entity_id)
        flow = flow_of(policy)
        stored = self.store.load(policy.id, entity_id)
        current = stored or initial_entity(flow)
        state = flow.states.get(current.state)
        return {
            "policy": {"id": policy.id, "revision": policy.revision},
            "entity": {"id": entity_id, "version": current.version, "exists": stored is not None},
            "state": {
                **_state(flow, current.state),
                "final": bool(state and state.final),
                **({"note": state.note.to_dict()} if state and state.note else {}),
            },
            "facts": dict(current.facts),
            "allowed_events": flow.allowed_events(current.state),
            "allowed_roles": flow.allowed_roles(current.state),
            "created_at": current.created_at,
            "last_at": current.last_at,
            "last_event": current.last_event,
            "state_since": current.state_since,
        }

    def import_entity(
        self,
        policy_id: str,
        entity_id: str,
        state: Any,
        facts: Any,
        *,
        principal: str | None = None,
    ) -> dict[str, Any]:
        """Create an entity in a given state with given facts, without a move: cases that
        are already under way in another system when they come to kimari. Version 0, its
        history's first row (version 0, before any move) recording the import: the state
        and facts, when, and `principal` (who imported it: the service passes the token's;
        also an audit entry where the store keeps the audit trail). Refused (InputError,
        code entity_exists) if the entity exists."""
        policy = self.policy(policy_id)
        check_entity_id(entity_id)
        flow = flow_of(policy)
        if not isinstance(state, str) or state not in flow.states:
            raise InputError(
                [
                    Diagnostic(
                        "unknown_state",
                        Msg(
                            "{state} is not a state of '{policy}'",
                            state=quoted(state),
                            policy=policy.id,
                        ),
                        pointer="/state",
                        hint=did_you_mean(str(state), flow.states),
                    )
                ]
            )
        if flow.states[state].abolished:  # as a move into it is: no entity may stand there
            raise InputError(
                [
                    Diagnostic(
                        "abolished_state",
                        Msg(
                            "'{state}' is an abolished state of '{policy}': no entity can be "
                            "imported into it",
                            state=state,
                            policy=policy.id,
                        ),
                        pointer="/state",
                        hint=_note_of(flow.states[state]),
                    )
                ]
            )
        normalised = flow.entity.validate(facts if facts is not None else {}, pointer="/facts")
        with self.entity_lock(policy.id, entity_id):
            exists = self.store.load(policy.id, entity_id) is not None
            if not exists:  # an entity stored before the rule is an entity_exists, as any
                check_new_entity_id(entity_id)
            # the store refuses an existing entity too: another process may have made it
            if exists or not self.store.import_entity(
                policy.id,
                entity_id,
                EntityState(state, to_json_value(normalised)),
                policy.revision,
                principal=principal,
            ):
                raise InputError(
                    [
                        Diagnostic(
                            "entity_exists",
                            Msg(
                                "entity '{entity}' of '{policy}' already exists; only new "
                                "entities can be imported",
                                entity=entity_id,
                                policy=policy.id,
                            ),
                            pointer="/state",
                        )
                    ]
                )
        return self.entity(policy_id, entity_id)

    def history(self, policy_id: str, entity_id: str) -> list[HistoryRow]:
        policy = self.policy(policy_id)
        check_entity_id(entity_id)
        return self.store.history(policy.id, entity_id)

    def refusals(self, policy_id: str, entity_id: str) -> list[dict[str, Any]]:
        policy = self.policy(policy_id)
        check_entity_id(entity_id)
        return self.store.refusals(policy.id, entity_id)


def flow_policy(project: Catalog, policy_id: str) -> CompiledPolicy:
    """The flow policy `policy_id`; UsageError if there is none or it is not a flow."""
    policy = project.policy(policy_id)
    if policy.kind != "flow":
        raise UsageError(
            [
                Diagnostic(
                    "not_a_flow",
                    Msg(
                        "policy '{id}' is a {kind} policy, not a flow: use `kimari decide` / "
                        "POST /v1/decisions",
                        id=policy_id,
                        kind=kind_word(policy.kind),
                    ),
                )
            ]
        )
    return policy


def _note_of(state: Any) -> Rendered | None:
    """The abolished state's note (what to do instead), in the answer's language."""
    note = state.note
    if note is None:
        return None
    return Rendered(lambda lang: note.ja if lang == "ja" or not note.en else note.en)


def _check_same_event(
    policy: CompiledPolicy,
    row: HistoryRow,
    event: Any,
    actor: Any,
    at: datetime | str | None,
    settings: Mapping[str, Any] | None,
) -> None:
    """A retried event must be the event its id first carried, from the same actor (id and
    roles: the roles are what allowed the move): another one under a used id would be
    answered with the first one's move, and never applied. Its `at` may differ (a retry
    without one is timed when it arrives), and the actor's name, which only shows it, and
    its settings, which a replay does not read.

    A retry is checked first as a first try is, in the same order (runtime.evaluate: the
    `at`, the event, its actor, the settings): an invalid request is the same 422 whether
    or not its id was used, never answered with a stored move."""
    flow = flow_of(policy)
    resolve_at(at)
    sent = to_json_value(flow.validate_event(event))
    who = validate_actor(actor)
    if settings:
        resolve_settings(policy, settings)
    first = {k: v for k, v in row.event.items() if k != DECISION_FIELD}
    same_actor = row.actor is None or (
        row.actor.get("id") == who.id and sorted(row.actor.get("roles", ())) == sorted(who.roles)
    )
    if sent == first and same_actor:
        return
    raise InputError(
        [
            Diagnostic(
                "event_id_conflict",
                Msg(
                    "event id '{id}' was used by another event of this entity ({type} at "
                    "{at}, by '{actor}'); a new event needs a new id",
                    id=row.event_id,
                    type=row.event_type,
                    at=row.at,
                    actor=(row.actor or {}).get("id", "-"),
                ),
                pointer="/event_id",
            )
        ]
    )


def check_new_entity_id(value: str) -> None:
    """A new entity's id has no blank at either end: "EST-1 " was a second entity beside
    "EST-1" (a copy and paste, a padded column), and " " an entity at all. Entities stored
    before this rule keep their ids, and every request still reaches them."""
    trimmed = value.strip()
    if trimmed != value:
        raise InputError(
            [
                Diagnostic(
                    "entity_id_invalid",
                    Msg(
                        "a new entity's id has no blank at either end, got {value}",
                        value=shown(value),
                    ),
                    pointer="/entity_id",
                    hint=Msg("did you mean '{name}'?", name=trimmed) if trimmed else None,
                )
            ]
        )


def check_entity_id(
    value: Any, pointer: str = "/entity_id", code: str = "entity_id_invalid"
) -> None:
    if (
        not isinstance(value, str)
        or not value
        or len(value) > MAX_ENTITY_ID
        or not value.isprintable()
    ):
        raise InputError(
            [
                Diagnostic(
                    code,
                    Msg(
                        "an id is 1 to {limit} printable characters, got {value}",
                        limit=MAX_ENTITY_ID,
                        value=shown(value),
                    ),
                    pointer=pointer,
                )
            ]
        )
    if code == "entity_id_invalid" and "/" in value:
        raise InputError(
            [
                Diagnostic(
                    code,
                    Msg(
                        "an entity id cannot hold '/': the service's paths name the entity "
                        "(/v1/flows/POLICY/ID), and no path can carry it, got {value}",
                        value=shown(value),
                    ),
                    pointer=pointer,
                )
            ]
        )


def replay(
    policy: CompiledPolicy,
    rows: list[HistoryRow],
    *,
    backend: str = "durable",
    consulted: Consulted | None = None,
) -> tuple[EntityState, list[str]]:
    """Re-decide a stored history with `policy`, from the initial state or, for an imported
    entity, from the state and facts of its import (row 0): the entity it leads to, and
    every row where the re-decided move differs from the stored one. Each row is
    re-decided with its stored actor, and an event that consulted a decision policy
    consults it again (`consulted`: the revisions to replay against). A first move that
    left another state than the replay starts from (an entity imported before imports
    were recorded) is a difference too."""
    entity = initial_entity(flow_of(policy))
    differences = []
    for index, row in enumerate(rows):
        if row.imported:  # as the store made it: engine/store/flows.py import_entity
            entity = EntityState(
                row.to_state, row.facts, row.version, row.at, row.at, "seed", row.at
            )
            continue
        if index == 0 and row.from_state != entity.state:
            differences.append(
                Msg(
                    "version {version}: the stored move leaves {stored}, the replay starts "
                    "at {state}",
                    version=row.version,
                    stored=row.from_state,
                    state=entity.state,
                )
            )
        if row.actor is None:
            differences.append(
                Msg(
                    "version {version}: no actor recorded (moved before actors)",
                    version=row.version,
                )
            )
            continue
        event = {k: v for k, v in row.event.items() if k != DECISION_FIELD}
        answer = row.event.get(DECISION_FIELD)
        try:
            move = decide_move(
                policy,
                entity,
                event,
                actor=row.actor,
                at=row.at,
                settings=row.settings,
                backend=backend,
                consulted=consulted,
                # the consulted decision keeps its stored id: facts that record it compare
                consult_id=answer.get("decision_id") if isinstance(answer, dict) else None,
            )
        except InputError as exc:  # stored before a stricter check (an actor id " op-1")
            differences.append(
                Msg(
                    "version {version}: now invalid ({errors})",
                    version=row.version,
                    errors="; ".join(d.render() for d in exc.diagnostics),
                )
            )
            continue
        if not move.allowed:
            differences.append(
                Msg(
                    "version {version}: now refused ({refusal})",
                    version=row.version,
                    refusal=str(move.refusal),
                )
            )
            continue
        if move.state_after.id != row.to_state:
            differences.append(
                Msg(
                    "version {version}: {before} -> {after}, stored -> {stored}",
                    version=row.version,
                    before=row.from_state,
                    after=move.state_after.id,
                    stored=row.to_state,
                )
            )
        if move.facts_after != row.facts:
            differences.append(
                Msg(
                    "version {version}: facts {facts} != {stored}",
                    version=row.version,
                    facts=str(move.facts_after),
                    stored=str(row.facts),
                )
            )
        entity = advance(entity, move)
    return entity, differences
