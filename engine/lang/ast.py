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


def paths_read(node: Node, prefix: tuple[str, ...]) -> set[str]:
    """The names read one step below the path `prefix` in `node`: {'held'} for
    `event.decision.outcome.held == true` under ('event', 'decision', 'outcome'); EVERY
    where the path, or one above it, is read whole (`event.decision`). Paths bound by a
    lambda's parameter are the lambda's."""
    found: set[str] = set()
    stack: list[tuple[Node, bool]] = [(node, False)]
    while stack:
        sub, shadowed = stack.pop()
        if isinstance(sub, Lambda):
            stack.append((sub.body, shadowed or sub.param == prefix[0]))
            continue
        path = path_of(sub)
        if path is not None:
            if not shadowed and path[: len(prefix)] == prefix[: len(path)]:
                found.add(path[len(prefix)] if len(path) > len(prefix) else EVERY)
            continue
        stack.extend((child, shadowed) for child in sub.children())
    return found


def dependency_order(
    names: list[str], parsed: Mapping[str, Node], root: str
) -> tuple[list[str], dict[str, tuple[str, ...]]]:
    """`names` (values of `root`, each computed by its parsed expression) in an order where
    each comes after those it reads; and those in cycles, left out of the order, each with
    the names of its own cycle (sorted).

    Linear in names and reads, and without recursion: a policy of 20,000 derived values
    chained one to the next is ordered in milliseconds, declared in any order.
    """
    known = set(names)
    deps = {n: sorted(_reads(parsed[n], root, known)) if n in parsed else [] for n in names}
    cycles = _cycles(names, deps)
    order: list[str] = []
    done: set[str] = set()
    for name in names:
        if name in done or name in cycles:
            continue
        done.add(name)
        stack = [(name, iter(deps[name]))]
        while stack:
            current, pending = stack[-1]
            for dep in pending:
                if dep not in done and dep not in cycles:
                    done.add(dep)
                    stack.append((dep, iter(deps[dep])))
                    break
            else:
                stack.pop()
                order.append(current)
    return order, cycles


def _reads(node: Node, root: str, names: set[str]) -> set[str]:
    """Which of `names` an expression reads: every one where it reads the root whole, itself
    included, so that a computed value reading the whole outcome is a cycle, refused, rather
    than computed before the values it reads."""
    read = names_read(node, root)
    return set(names) if EVERY in read else read & names


def _cycles(names: list[str], deps: Mapping[str, list[str]]) -> dict[str, tuple[str, ...]]:
    """Each name that reads itself, directly or through others, with the names of its cycle
    (its strongly connected component, sorted): Tarjan's algorithm, iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    component: list[str] = []
    cycles: dict[str, tuple[str, ...]] = {}
    for start in names:
        if start in index:
            continue
        index[start] = low[start] = len(index)
        component.append(start)
        on_stack.add(start)
        work = [(start, iter(deps[start]))]
        while work:
            current, pending = work[-1]
            for dep in pending:
                if dep not in index:
                    index[dep] = low[dep] = len(index)
                    component.append(dep)
                    on_stack.add(dep)
                    work.append((dep, iter(deps[dep])))
                    break
                if dep in on_stack:
                    low[current] = min(low[current], index[dep])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[current])
                if low[current] == index[current]:
                    members = []
                    while True:
                        member = component.pop()
                        on_stack.discard(member)
                        members.append(member)
                        if member == current:
                            break
                    if len(members) > 1 or current in deps[current]:
                        cycle = tuple(sorted(members))
                        cycles.update(dict.fromkeys(members, cycle))
    return cycles


def conjuncts(node: Node) -> tuple[Node, ...]:
    """The top-level `and` operands of a condition (the condition itself if not an `and`)."""
    if isinstance(node, Logical) and node.op == "and":
        return tuple(c for operand in node.operands for c in conjuncts(operand))
    return (node,)
