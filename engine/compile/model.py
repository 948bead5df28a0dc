"""The compiled form of a policy: immutable, one per revision.

`compile.py` builds these from a validated YAML document; `evaluate.py`
runs them. Every part keeps where it came from (`file:line:col`) so that a
decision can be explained in terms of the file the editor wrote.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.core.errors import Location
from engine.core.i18n import Msg
from engine.lang import ast
from engine.lang.types import Type
from engine.source.yaml import PositionIndex

if TYPE_CHECKING:
    from engine.durable.adapter import RulesetHandle
    from engine.source.facts import FactsValidator

Env = dict[str, Any]

HIT_POLICIES = ("collect", "first", "unique", "priority")
RESERVED_ROOTS = frozenset({"settings", "derived", "data", "at", "outcome"})


def kind_word(kind: str) -> str:
    """A policy's kind as a message names it: the code in English, words in Japanese."""
    return {"decision": Msg("decision"), "flow": Msg("flow")}.get(kind, kind)


@dataclass(frozen=True)
class Text:
    ja: str
    en: str | None = None

    @classmethod
    def of(cls, data: Mapping[str, str] | None) -> Text | None:
        return None if data is None else cls(data["ja"], data.get("en"))

    def to_dict(self) -> dict[str, str]:
        return {"ja": self.ja, "en": self.en} if self.en else {"ja": self.ja}


@dataclass(frozen=True)
class Source:
    """Where an expression's text lives: a YAML string scalar, from `offset` on."""

    positions: PositionIndex
    pointer: str
    scalar: str
    offset: int = 0

    def locate(self, start: int = 0) -> Location:
        return self.positions.within(self.pointer, self.offset + start, self.scalar)


@dataclass(frozen=True, eq=False)
class Expr:
    """A checked expression with its compiled Python form."""

    text: str
    node: ast.Node
    type: Type
    types: Mapping[ast.Node, Type]
    source: Source
    fn: Callable[[Env], Any]

    def location(self, node: ast.Node | None = None) -> Location:
        return self.source.locate(node.start if node is not None else 0)

    def snippet(self, node: ast.Node) -> str:
        return self.text[node.start : node.end]


@dataclass(frozen=True)
class Value:
    """A constant, or an expression for values written '= ...'."""

    constant: Any = None
    expr: Expr | None = None

    def compute(self, env: Env) -> Any:
        return self.constant if self.expr is None else self.expr.fn(env)


@dataclass(frozen=True)
class Template:
    """A message with {expression} holes, rendered per decision."""

    text: str
    parts: tuple[str | Expr, ...]

    def __post_init__(self) -> None:
        # Laid out once: the texts with a blank in each hole's place, and each hole's place
        # and function. A reason's message is rendered for every decision it applies to.
        texts = [p if isinstance(p, str) else "" for p in self.parts]
        holes = tuple((i, p.fn) for i, p in enumerate(self.parts) if not isinstance(p, str))
        object.__setattr__(self, "_texts", texts)
        object.__setattr__(self, "_holes", holes)
        object.__setattr__(self, "_fixed", "".join(texts) if not holes else None)

    def render(self, env: Env, format_value: Callable[[Any], str]) -> str:
        fixed: str | None = self._fixed  # type: ignore[attr-defined]
        if fixed is not None:
            return fixed
        out: list[str] = self._texts.copy()  # type: ignore[attr-defined]
        for i, fn in self._holes:  # type: ignore[attr-defined]
            out[i] = format_value(fn(env))
        return "".join(out)


@dataclass(frozen=True)
class Message:
    ja: Template
    en: Template | None

    def render(self, env: Env, format_value: Callable[[Any], str]) -> dict[str, str]:
        """The texts of this decision, `{ja, en}`, holes filled."""
        out = {"ja": self.ja.render(env, format_value)}
        if self.en is not None:
            out["en"] = self.en.render(env, format_value)
        return out


@dataclass(frozen=True)
class Setting:
    name: str
    type: Type
    default: Any
    enum: tuple[Any, ...] | None
    minimum: Any
    maximum: Any
    label: Text | None
    refs: tuple[str, ...]
    location: Location


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    entry_type: Type
    validator: FactsValidator
    schema_path: str
    source_path: str | None
    key: str | None
    match: Mapping[str, str]
    find_keys: tuple[tuple[str, ...], ...]
    label: Text | None
    location: Location


@dataclass(frozen=True)
class Derived:
    name: str
    expr: Expr
    label: Text | None
    refs: tuple[str, ...]
    location: Location


@dataclass(frozen=True)
class OutcomeField:
    name: str
    type: Type
    default: Value
    merge: str
    rank: tuple[Any, ...] | None
    computed: Expr | None
    label: Text | None
    location: Location
    refs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reason:
    code: str
    message: Message
    action: Message | None
    details: tuple[tuple[str, Value], ...]


def _in_dependency_order(fields: Mapping[str, OutcomeField]) -> tuple[OutcomeField, ...]:
    """The computed fields, each after the computed fields its expression reads (the
    compiler refused a cycle), else in declaration order."""
    computed = {n: f.computed.node for n, f in fields.items() if f.computed is not None}
    order, _ = ast.dependency_order(list(computed), computed, "outcome")
    return tuple(fields[name] for name in order)


@dataclass(frozen=True)
class OutcomePlan:
    """How an outcome is filled: constant defaults copied, the rest computed per decision."""

    constants: Mapping[str, Any]
    computed_defaults: tuple[OutcomeField, ...]
    mutable: tuple[str, ...]  # constant defaults that are lists or records: copied each time
    computed: tuple[OutcomeField, ...]
    collected: frozenset[str] = frozenset()  # fields merged into a list, even the first value
    copied: bool = False  # every default is an immutable constant: defaults() is a dict copy

    @classmethod
    def of(cls, fields: Mapping[str, OutcomeField]) -> OutcomePlan:
        constants = {n: f.default.constant for n, f in fields.items() if f.default.expr is None}
        computed_defaults = tuple(f for f in fields.values() if f.default.expr is not None)
        mutable = tuple(n for n, v in constants.items() if isinstance(v, list | dict))
        return cls(
            constants,
            computed_defaults,
            mutable,
            _in_dependency_order(fields),
            frozenset(n for n, f in fields.items() if f.merge == "collect"),
            not computed_defaults and not mutable,
        )

    def defaults(self, env: Env) -> dict[str, Any]:
        """Every declared field with its default, in declaration order."""
        out = dict(self.constants)
        for name in self.mutable:
            out[name] = copy.deepcopy(out[name])
        for spec in self.computed_defaults:
            out[spec.name] = spec.default.compute(env)
        return out


@dataclass(frozen=True)
class Rule:
    id: str
    index: int
    refs: tuple[str, ...]
    label: Text | None
    location: Location
    conditions: tuple[Expr, ...]
    check: Callable[[Env], bool]
    durable: Mapping[str, Any]
    then: tuple[tuple[str, Value], ...]
    reason: Reason | None
    priority: int

    @functools.cached_property
    def static_reason(self) -> dict[str, Any] | None:
        """The reason as a decision reports it, when nothing in it depends on the facts."""
        reason = self.reason
        if reason is None or any(v.expr is not None for _, v in reason.details):
            return None
        texts = [reason.message, *([reason.action] if reason.action else [])]
        if any(not _static(m) for m in texts):
            return None
        out: dict[str, Any] = {
            "rule": self.id,
            "refs": list(self.refs),
            "code": reason.code,
            "message": _static_text(reason.message),
        }
        if reason.action is not None:
            out["action"] = _static_text(reason.action)
        out.update((name, value.constant) for name, value in reason.details)
        return out


def _static(message: Message) -> bool:
    return all(
        len(t.parts) <= 1 and all(isinstance(p, str) for p in t.parts)
        for t in (message.ja, message.en)
        if t is not None
    )


def _static_text(message: Message) -> dict[str, str]:
    out = {"ja": "".join(str(p) for p in message.ja.parts)}
    if message.en is not None:
        out["en"] = "".join(str(p) for p in message.en.parts)
    return out


@dataclass(frozen=True)
class PolicySource:
    """What a revision was compiled from: the policy text and the files it names."""

    text: str
    files: Mapping[str, bytes]


@dataclass(eq=False)
class CompiledPolicy:
    """Everything needed to decide with one revision of one policy."""

    id: str
    kind: str
    title: Text
    revision: str
    path: str
    hit_policy: str
    facts: FactsValidator
    settings: Mapping[str, Setting]
    datasets: Mapping[str, DatasetSpec]
    derived: tuple[Derived, ...]
    outcome: Mapping[str, OutcomeField]
    rules: tuple[Rule, ...]
    durable_rules: Mapping[str, Any]
    build_message: Callable[[Env], dict[str, Any]]
    key_names: Mapping[str, str] = field(default_factory=dict)  # message key -> the field
    warnings: tuple[Any, ...] = ()
    source: PolicySource | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    _handle: RulesetHandle | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closed: bool = False

    @functools.cached_property
    def default_settings(self) -> dict[str, Any]:
        return {name: s.default for name, s in self.settings.items()}

    @functools.cached_property
    def outcome_plan(self) -> OutcomePlan:
        return OutcomePlan.of(self.outcome)

    @functools.cached_property
    def rule_checks(self) -> tuple[tuple[Rule, Callable[[Env], bool]], ...]:
        """Each rule with its check: the reference matcher's loop reads no attribute."""
        return tuple((rule, rule.check) for rule in self.rules)

    @functools.cached_property
    def rule_by_id(self) -> dict[str, Rule]:
        return {r.id: r for r in self.rules}

    def durable_handle(self) -> RulesetHandle:
        """The durable_rules ruleset of this revision, registered on first use."""
        handle = self._handle
        if handle is not None:
            return handle
        from engine.durable.adapter import Mode, get_adapter

        with self._lock:
            if self._handle is None:
                mode = Mode.COLLECT if self.hit_policy in ("collect", "unique") else Mode.FIRST
                self._handle = get_adapter().register(
                    f"{self.id}@{self.revision}",
                    self.durable_rules,
                    mode=mode,
                    key_names=self.key_names,
                )
            return self._handle

    def close(self) -> None:
        """Unregister the durable ruleset (after this revision is replaced)."""
        from engine.durable.adapter import get_adapter

        with self._lock:
            self._closed = True
            if self._handle is not None:
                get_adapter().unregister(self._handle)
                self._handle = None
