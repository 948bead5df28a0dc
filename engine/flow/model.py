"""The compiled form of a flow policy: states, events and transitions, immutable per revision.

A flow policy compiles into an ordinary `CompiledPolicy` whose rules are its transitions
(hit policy `first`), so that durable_rules decides each move exactly as it decides any
policy; `policy.extra["flow"]` holds this `FlowSpec` with what a rule does not carry:
where each transition goes, what it records, the actions it requires, who may make it
(`by`, roles of `FlowSpec.roles`), the decision policy an event consults first
(`FlowEvent.decide`) and the labels that refusal messages are written with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from engine.compile.model import Expr, Message, Text, Value
from engine.core.errors import Diagnostic, InputError, Location
from engine.core.i18n import Msg
from engine.core.suggest import did_you_mean

# the event field the engine fills with a consulted decision: the store finds moves by it
from engine.store.flows import DECISION_FIELD

if TYPE_CHECKING:
    from engine.compile.model import CompiledPolicy
    from engine.source.facts import FactsValidator

# The roots a flow's expressions read besides settings, derived, data and at.
FLOW_ROOTS = ("state", "entity", "event", "history", "actor")
EVENT_TYPE = "type"  # the key of the event body that names the event


@dataclass(frozen=True)
class FlowState:
    id: str
    label: Text
    final: bool
    abolished: bool
    note: Text | None
    refs: tuple[str, ...]
    location: Location

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label.to_dict()}


@dataclass(frozen=True)
class FlowRole:
    id: str
    label: Text
    description: Text | None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "label": self.label.to_dict()}
        if self.description is not None:
            out["description"] = self.description.to_dict()
        return out


@dataclass(frozen=True)
class DecisionCall:
    """An event that consults a decision policy before the flow decides: the engine decides
    `policy` with the facts (and settings) computed from the flow's env, and the answer
    is the event's field `decision` ({policy, decision_id, outcome, reasons, fired, data})."""

    policy: str
    facts: Expr
    settings: Expr | None
    answer: FactsValidator  # the answer's schema, from the consulted policy's outcome
    location: Location


@dataclass(frozen=True)
class FlowEvent:
    name: str
    label: Text
    fields: Mapping[str, Mapping[str, Any]]  # JSON Schema of each field
    validator: FactsValidator
    refs: tuple[str, ...]
    location: Location
    by: tuple[str, ...] | None = None  # the default roles of its transitions
    decide: DecisionCall | None = None

    def field_label(self, name: str) -> str:
        schema = self.fields.get(name, {})
        return str(schema.get("title", name))


@dataclass(frozen=True)
class Action:
    code: str
    text: Message
    to: tuple[str, ...]
    when: tuple[Expr, ...]
    details: tuple[tuple[str, Value], ...] = ()


@dataclass(frozen=True)
class Transition:
    id: str
    index: int
    refs: tuple[str, ...]
    label: Text | None
    sources: tuple[str, ...]  # the states it leaves ('*' expanded)
    event: str
    target: str | None  # None: the entity stays in its state
    by: tuple[str, ...] | None  # roles that may make it (its own, else its event's); None: any
    requires: tuple[str, ...]
    set: tuple[tuple[str, Value], ...]
    append: tuple[tuple[str, Value], ...]
    actions: tuple[Action, ...]
    message: Message | None
    refusal: Message | None
    location: Location
    missing: Message | None = None  # shown when a required field is missing
    guarded: bool = False  # has `when` guards (then `refusal` explains those, not `requires`)

    def target_of(self, state: str) -> str:
        return self.target or state


@dataclass(frozen=True)
class FlowSpec:
    initial: str
    states: Mapping[str, FlowState]
    events: Mapping[str, FlowEvent]
    transitions: tuple[Transition, ...]
    entity: FactsValidator  # the entity's stored facts
    roles: Mapping[str, FlowRole] = field(default_factory=dict)

    @cached_property
    def transition_by_id(self) -> dict[str, Transition]:
        return {t.id: t for t in self.transitions}

    def candidates(self, state: str, event: str) -> list[Transition]:
        """Transitions that leave `state` on `event`, in file order."""
        return [t for t in self.transitions if state in t.sources and t.event == event]

    def allowed_events(self, state: str) -> list[str]:
        """Events that can move an entity in `state`, in declaration order: an event whose
        every transition from here leads into an abolished state is always refused, so it
        is not offered."""
        accepted = {
            t.event
            for t in self.transitions
            if state in t.sources and not self.states[t.target_of(state)].abolished
        }
        return [name for name in self.events if name in accepted]

    def roles_for(self, state: str, event: str) -> tuple[str, ...] | None:
        """The roles that may send `event` in `state` (None: any actor). The compiler makes
        every transition from one state on one event name the same roles."""
        for transition in self.candidates(state, event):
            return transition.by
        return None

    def allowed_roles(self, state: str) -> dict[str, list[str] | None]:
        """For each event allowed in `state`, the roles that may send it (None: any)."""
        out: dict[str, list[str] | None] = {}
        for name in self.allowed_events(state):
            roles = self.roles_for(state, name)
            out[name] = list(roles) if roles is not None else None
        return out

    def validate_event(self, event: Any) -> dict[str, Any]:
        """The normalised event body, or InputError with a JSON pointer under /event."""
        if not isinstance(event, dict):
            raise InputError(
                [
                    Diagnostic(
                        "event_invalid", Msg("the event must be a JSON object"), pointer="/event"
                    )
                ]
            )
        name = event.get(EVENT_TYPE)
        consults = isinstance(name, str) and name in self.events and self.events[name].decide
        if DECISION_FIELD in event and consults:
            raise InputError(
                [
                    Diagnostic(
                        "decision_field_reserved",
                        Msg(
                            "'{name}' is the answer of the policy this event consults; the "
                            "engine fills it, the event cannot carry it",
                            name=DECISION_FIELD,
                        ),
                        pointer=f"/event/{DECISION_FIELD}",
                    )
                ]
            )
        if not isinstance(name, str) or name not in self.events:
            problem = (
                Msg("the event needs a 'type'")
                if name is None
                else Msg(
                    "unknown event type {name} (one of {events})",
                    name=repr(name),
                    events=", ".join(self.events),
                )
            )
            raise InputError(
                [
                    Diagnostic(
                        "unknown_event",
                        problem,
                        pointer=f"/event/{EVENT_TYPE}",
                        hint=did_you_mean(str(name), self.events) if name else None,
                    )
                ]
            )
        return self.events[name].validator.validate(event, pointer="/event")  # type: ignore[no-any-return]


def flow_of(policy: CompiledPolicy) -> FlowSpec:
    """The flow of a compiled flow policy (KeyError-free: callers check `policy.kind`)."""
    spec = policy.extra["flow"]
    assert isinstance(spec, FlowSpec)
    return spec
