"""Syntax tree of the expression language.

Every node keeps the character span it was parsed from, so that an error or
an explanation can point at the exact sub-expression inside a YAML scalar.
Nodes are immutable and compared by identity (`eq=False`): the checker keys
its type table by node.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, eq=False, slots=True)
class Node:
    start: int
    end: int

    def children(self) -> tuple[Node, ...]:
        return ()

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children():
            yield from child.walk()


@dataclass(frozen=True, eq=False, slots=True)
class Literal(Node):
    value: Any  # str, int, Decimal, bool, None


@dataclass(frozen=True, eq=False, slots=True)
class Name(Node):
    """A bare identifier: a root (fact field, settings, derived, at) or a lambda parameter."""

    name: str


@dataclass(frozen=True, eq=False, slots=True)
class Field(Node):
    """`target.name`."""

    target: Node
    name: str
    name_start: int

    def children(self) -> tuple[Node, ...]:
        return (self.target,)


@dataclass(frozen=True, eq=False, slots=True)
class Unary(Node):
    op: str  # 'not' or '-'
    operand: Node

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True, eq=False, slots=True)
class Logical(Node):
    op: str  # 'and' or 'or'
    operands: tuple[Node, ...]

    def children(self) -> tuple[Node, ...]:
        return self.operands


@dataclass(frozen=True, eq=False, slots=True)
class Compare(Node):
    op: str  # '==', '!=', '<', '<=', '>', '>=', 'in', 'not in'
    left: Node
    right: Node

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, eq=False, slots=True)
class Arith(Node):
    op: str  # '+', '-', '*', '/'
    left: Node
    right: Node

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, eq=False, slots=True)
class Lambda(Node):
    param: str
    body: Node

    def children(self) -> tuple[Node, ...]:
        return (self.body,)


@dataclass(frozen=True, eq=False, slots=True)
class Call(Node):
    name: str
    args: tuple[Node, ...]
    name_end: int

    def children(self) -> tuple[Node, ...]:
        return self.args


@dataclass(frozen=True, eq=False, slots=True)
class ListLit(Node):
    items: tuple[Node, ...]

    def children(self) -> tuple[Node, ...]:
        return self.items


@dataclass(frozen=True, eq=False, slots=True)
class RecordLit(Node):
    keys: tuple[str, ...]
    values: tuple[Node, ...]

    def children(self) -> tuple[Node, ...]:
        return self.values


def path_of(node: Node) -> tuple[str, ...] | None:
    """`order.payment.method` as ('order', 'payment', 'method'); None if not a plain path."""
    names: list[str] = []
    while isinstance(node, Field):
        names.append(node.name)
        node = node.target
    if not isinstance(node, Name):
        return None
    names.append(node.name)
    return tuple(reversed(names))


EVERY = "*"  # names_read's answer for the root read whole (`outcome`, not `outcome.x`)


def names_read(node: Node, root: str) -> set[str]:
    """The names read under `root` anywhere in `node`: {'total'} for `derived.total + 1`;
    EVERY where the root is read whole (`map([outcome], o -> o.b)` reads them all). A lambda
    parameter of the root's name is the lambda's, not the root."""
    found: set[str] = set()
    stack: list[tuple[Node, bool]] = [(node, False)]
    while stack:
        sub, shadowed = stack.pop()
        if isinstance(sub, Lambda):
            stack.append((sub.body, shadowed or sub.param == root))
            continue
        path = path_of(sub)
        if path is not None:
            if path[0] == root and not shadowed:
                found.add(path[1] if len(path) >= 2 else EVERY)
            continue
        stack.extend((child, shadowed) for child in sub.children())
    return found


def dependency_order(
    names: list[str], parsed: Mapping[str, Node], root: str
) -> tuple[list[str], dict[str, tuple[str, ...]]]:
    """`names` (values of `root`, each computed by its parsed expression) in an order where
    each comes after those it reads; and those in cycles, left out of the order, each with
    the names of its own cycle (sorted)."""
    deps = {n: _reads(parsed[n], root, names) if n in parsed else set() for n in names}
    reach = {n: _reachable(n, deps) for n in names}
    cycles = {
        n: tuple(sorted(m for m in reach[n] if n in reach[m])) for n in names if n in reach[n]
    }
    order: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in done or name in cycles:
            return
        done.add(name)
        for dep in sorted(deps[name]):
            visit(dep)
        order.append(name)

    for name in names:
        visit(name)
    return order, cycles


def _reads(node: Node, root: str, names: list[str]) -> set[str]:
    """Which of `names` an expression reads: every one where it reads the root whole, itself
    included, so that a computed value reading the whole outcome is a cycle, refused, rather
    than computed before the values it reads."""
    read = names_read(node, root)
    return set(names) if EVERY in read else read & set(names)


def _reachable(start: str, deps: Mapping[str, set[str]]) -> set[str]:
    """The names `start` reads, directly or through others (itself only through a cycle)."""
    seen: set[str] = set()
    stack = list(deps[start])
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(deps[name])
    return seen


def conjuncts(node: Node) -> tuple[Node, ...]:
    """The top-level `and` operands of a condition (the condition itself if not an `and`)."""
    if isinstance(node, Logical) and node.op == "and":
        return tuple(c for operand in node.operands for c in conjuncts(operand))
    return (node,)
