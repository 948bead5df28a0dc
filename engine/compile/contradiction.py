"""Conditions that can never all be true: `false`, `x > 5 and x < 3`, `x == 'a' and x ==
'b'`, `x in ['a', 'b'] and x not in ['a', 'b']`.

A rule whose conditions contradict each other can never apply; the compiler warns about it
(rules.py, `rule_never_applies`) rather than refusing it, as `when: false` may be written on
purpose to switch a rule off. Only what the conditions say about one value against constants
is compared, conjunct by conjunct (the `and`s at the top of each condition): whatever is
not understood here (an `or`, a call, a setting on the other side) constrains nothing, so a
warning is never given for a rule that could apply. Null follows the language: `==` and
`!=` take null as a value, an ordering comparison is false on null (docs/policy-language.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine.lang import ast

_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_ORDERS = ("<", "<=", ">", ">=")


def contradiction(conjuncts: Iterable[ast.Node]) -> ast.Node | None:
    """The first conjunct after which the conjunction can no longer be true, or None."""
    values: dict[str, _Value] = {}
    for node in conjuncts:
        if isinstance(node, ast.Literal) and node.value in (False, None):
            return node
        said = _statement(node)
        if said is None:
            continue
        path, op, constant = said
        value = values.setdefault(path, _Value())
        value.add(op, constant)
        if value.impossible():
            return node
    return None


def _statement(node: ast.Node) -> tuple[str, str, Any] | None:
    """(path, operator, constant) for a conjunct about one value, else None."""
    if not isinstance(node, ast.Compare):
        path = _path(node)  # a value alone holds when it is neither false nor null
        return (path, "holds", None) if path else None
    left, right, op = node.left, node.right, node.op
    if _path(left) is None and op in _FLIP:
        left, right, op = right, left, _FLIP[op]
    path = _path(left)
    if path is None:
        return None
    if op in ("in", "not in"):
        items = right.items if isinstance(right, ast.ListLit) else ()
        constants = [_constant(i) for i in items]
        if not isinstance(right, ast.ListLit) or _UNKNOWN in constants:
            return None
        # null is never `in` a list, even one holding null, and always `not in` it
        return path, op, frozenset(_key(c) for c in constants if c is not None)
    constant = _constant(right)
    if constant is _UNKNOWN or (op in _ORDERS and not _is_number(constant)):
        return None  # dates and texts are not written as literals to order by
    return path, op, constant


_UNKNOWN = object()


def _constant(node: ast.Node) -> Any:
    """The value of a literal (a negative number included), else _UNKNOWN."""
    if isinstance(node, ast.Literal):
        return node.value
    if isinstance(node, ast.Unary) and node.op == "-" and isinstance(node.operand, ast.Literal):
        value = node.operand.value
        return -value if _is_number(value) else _UNKNOWN
    return _UNKNOWN


def _path(node: ast.Node) -> str | None:
    """`order.payment.method` for a chain of names, None for anything computed."""
    if isinstance(node, ast.Name):
        return node.name
    if isinstance(node, ast.Field):
        target = _path(node.target)
        return f"{target}.{node.name}" if target else None
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


def _key(value: Any) -> tuple[str, Any]:
    """Equal keys for equal values of the language: 5 and 5.0, never 1 and true."""
    if _is_number(value):
        return ("number", Decimal(value))
    return (type(value).__name__, value)


@dataclass
class _Value:
    """What the conjuncts so far say of one value."""

    allowed: frozenset[tuple[str, Any]] | None = None  # None: any value
    excluded: set[tuple[str, Any]] = field(default_factory=set)
    low: Decimal | None = None
    low_included: bool = True
    high: Decimal | None = None
    high_included: bool = True
    ordered: bool = False  # an ordering comparison holds, so the value is a number

    def add(self, op: str, constant: Any) -> None:
        if op == "holds":  # a value alone: neither false nor null
            self.excluded |= {_key(False), _key(None)}
        elif op == "in":
            self._allow(constant)
        elif op == "not in":
            self.excluded |= constant
        elif op == "==":
            self._allow(frozenset([_key(constant)]))
        elif op == "!=":
            self.excluded.add(_key(constant))
        else:
            self._bound(op, Decimal(constant))

    def _allow(self, keys: frozenset[tuple[str, Any]]) -> None:
        self.allowed = keys if self.allowed is None else self.allowed & keys

    def _bound(self, op: str, limit: Decimal) -> None:
        self.ordered = True
        if op in (">", ">="):
            included = op == ">="
            if self.low is None or limit > self.low or (limit == self.low and not included):
                self.low, self.low_included = limit, included
        else:
            included = op == "<="
            if self.high is None or limit < self.high or (limit == self.high and not included):
                self.high, self.high_included = limit, included

    def impossible(self) -> bool:
        if self.low is not None and self.high is not None:
            if self.low > self.high:
                return True
            if self.low == self.high and not (self.low_included and self.high_included):
                return True
        if self.allowed is None:
            return False
        return not any(self._possible(key) for key in self.allowed)

    def _possible(self, key: tuple[str, Any]) -> bool:
        if key in self.excluded:
            return False
        if not self.ordered:
            return True
        kind, value = key
        if kind == "bool":
            value = Decimal(value)  # a value of no declared type orders as Python does
        elif kind != "number":
            return False  # null (or a text) is never ordered
        if self.low is not None and (
            value < self.low or (value == self.low and not self.low_included)
        ):
            return False
        return not (
            self.high is not None
            and (value > self.high or (value == self.high and not self.high_included))
        )
