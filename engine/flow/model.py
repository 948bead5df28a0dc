"""The compiled form of a flow policy: states, events and transitions, immutable per revision.

A flow policy compiles into an ordinary `CompiledPolicy` whose rules are its transitions
(hit policy `first`), so that durable_rules decides each move exactly as it decides any
policy; `policy.extra["flow"]` holds this `FlowSpec` with what a rule does not carry:
where each transition goes, what it records, the actions it requires and the labels that
refusal messages are written with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from engine.compile.model import Expr, Message, Text, Value
from engine.core.errors import Diagnostic, InputError, Location
from engine.core.suggest import did_you_mean

if TYPE_CHECKING:
    from engine.compile.model import CompiledPolicy
    from engine.source.facts import FactsValidator

# The roots a flow's expressions read besides settings, derived, data and at.
FLOW_ROOTS = ("state", "entity", "event", "history")
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
class FlowEvent:
    name: str
    label: Text
    fields: Mapping[str, Mapping[str, Any]]  # JSON Schema of each field
    validator: FactsValidator
    refs: tuple[str, ...]
    location: Location

    def field_label(self, name: str) -> str:
        schema = self.fields.get(name, {})
        return str(schema.get("title", name))


@dataclass(frozen=True)
class Action:
    code: str
    text: Message
    to: tuple[str, ...]
    when: tuple[Expr, ...]


@dataclass(frozen=True)
class Transition:
    id: str
    index: int
    refs: tuple[str, ...]
    label: Text | None
    sources: tuple[str, ...]  # the states it leaves ('*' expanded)
    event: str
    target: str | None  # None: the entity stays in its state
    requires: tuple[str, ...]
    set: tuple[tuple[str, Value], ...]
    append: tuple[tuple[str, Value], ...]
    actions: tuple[Action, ...]
    message: Message | None
    refusal: Message | None
    location: Location

    def target_of(self, state: str) -> str:
        return self.target or state


@dataclass(frozen=True)
class FlowSpec:
    initial: str
    states: Mapping[str, FlowState]
    events: Mapping[str, FlowEvent]
    transitions: tuple[Transition, ...]
    entity: FactsValidator  # the entity's stored facts

    @cached_property
    def transition_by_id(self) -> dict[str, Transition]:
        return {t.id: t for t in self.transitions}

    def candidates(self, state: str, event: str) -> list[Transition]:
        """Transitions that leave `state` on `event`, in file order."""
        return [t for t in self.transitions if state in t.sources and t.event == event]

    def allowed_events(self, state: str) -> list[str]:
        """Events that some transition accepts in `state`, in declaration order."""
        accepted = {t.event for t in self.transitions if state in t.sources}
        return [name for name in self.events if name in accepted]

    def validate_event(self, event: Any) -> dict[str, Any]:
        """The normalised event body, or InputError with a JSON pointer under /event."""
        if not isinstance(event, dict):
            raise InputError(
                [Diagnostic("event_invalid", "the event must be a JSON object", pointer="/event")]
            )
        name = event.get(EVENT_TYPE)
        if not isinstance(name, str) or name not in self.events:
            problem = (
                "the event needs a 'type'"
                if name is None
                else f"unknown event type {name!r} (one of {', '.join(self.events)})"
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
