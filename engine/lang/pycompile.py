"""Compile checked expressions into Python closures.

This is the reference semantics of the language; the durable_rules compiler
must agree with it (a hypothesis test checks that). The rules:

- A missing fact is null. `a == b` is true when both are null or both are
  equal; `a != b` is its negation. `<`, `<=`, `>`, `>=` are false when either
  side is null. `x in list` is false for a null x or a null list.
- In a condition, null counts as false: `not` of null is true, `and`/`or`
  treat null as false.
- Arithmetic with null gives null. Numbers are Decimal, never float: `+ - *` are
  exact, `/` rounds once to 34 significant digits (engine/lang/functions.py).
- Values are only ever read from dicts (facts, settings, derived values,
  data entries): there is no attribute access, so a policy cannot reach a
  Python object.

Closures, not an AST walk per decision: each node becomes one function
created once per policy revision.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from engine.core.i18n import Msg, message_of
from engine.lang import ast
from engine.lang import functions as arith
from engine.lang.functions import FUNCTIONS

Env = dict[str, Any]
Fn = Callable[[Env], Any]

_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


class EvalFailure(Exception):
    """An expression could not be computed (bad date, division by zero, ...)."""

    def __init__(self, node: ast.Node, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message


def _failed(function: str, exc: Exception) -> str:
    """Why a call failed: our own reasons (a Msg) translate, Python's are shown as they are."""
    return Msg("{function}(): {reason}", function=function, reason=message_of(exc))


def fold_constants(node: ast.Node) -> ast.Node:
    """Compute calls whose arguments are all constants once, at compile time.

    `datetime("2024-09-21T24:00:00+09:00")` becomes a literal instant, so the
    durable_rules compiler sees a value it can compare with.
    """
    if isinstance(node, ast.Call):
        args = tuple(fold_constants(a) for a in node.args)
        function = FUNCTIONS.get(node.name)
        if (
            function is not None
            and function.foldable
            and not function.lambda_args
            and all(isinstance(a, ast.Literal) for a in args)
            and function.min_args <= len(args) <= function.max_args
        ):
            values = [a.value for a in args]  # type: ignore[attr-defined]
            if function.nulls != "propagate" or all(v is not None for v in values):
                try:
                    return ast.Literal(node.start, node.end, function.impl(*values))
                except (ValueError, ArithmeticError, TypeError) as exc:
                    raise EvalFailure(node, _failed(node.name, exc)) from None
        return ast.Call(node.start, node.end, node.name, args, node.name_end)
    if isinstance(node, ast.Field):
        return ast.Field(
            node.start, node.end, fold_constants(node.target), node.name, node.name_start
        )
    if isinstance(node, ast.Unary):
        return ast.Unary(node.start, node.end, node.op, fold_constants(node.operand))
    if isinstance(node, ast.Logical):
        return ast.Logical(
            node.start, node.end, node.op, tuple(fold_constants(o) for o in node.operands)
        )
    if isinstance(node, ast.Compare):
        return ast.Compare(
            node.start, node.end, node.op, fold_constants(node.left), fold_constants(node.right)
        )
    if isinstance(node, ast.Arith):
        return ast.Arith(
            node.start, node.end, node.op, fold_constants(node.left), fold_constants(node.right)
        )
    if isinstance(node, ast.Lambda):
        return ast.Lambda(node.start, node.end, node.param, fold_constants(node.body))
    if isinstance(node, ast.ListLit):
        return ast.ListLit(node.start, node.end, tuple(fold_constants(i) for i in node.items))
    if isinstance(node, ast.RecordLit):
        return ast.RecordLit(
            node.start, node.end, node.keys, tuple(fold_constants(v) for v in node.values)
        )
    return node


def compile_expr(node: ast.Node) -> Fn:
    """A function env -> value computing `node` under the reference semantics."""
    compiler = _COMPILERS[type(node)]
    return compiler(node)


def compile_condition(node: ast.Node) -> Callable[[Env], bool]:
    """Like compile_expr, but null reads as false and the result is a real bool.

    Comparisons and logic already return real bools, so they need no wrapper:
    this function runs for every rule of every decision.
    """
    fn = compile_expr(node)
    if isinstance(node, ast.Compare | ast.Logical) or (
        isinstance(node, ast.Unary) and node.op == "not"
    ):
        return fn
    path = ast.path_of(node)
    if path is not None and len(path) == 2:
        a, b = path

        def is_true(env: Env) -> bool:
            v = env.get(a)
            return type(v) is dict and v.get(b) is True

        return is_true
    return lambda env: fn(env) is True


def compile_conditions(nodes: list[ast.Node]) -> Callable[[Env], bool]:
    """All of a rule's conditions (its `when` list) as one function."""
    fused = _fused_and(nodes) if len(nodes) > 1 else None
    if fused is not None:
        return fused
    parts = [compile_condition(n) for n in nodes]
    return parts[0] if len(parts) == 1 else all_of(parts)


def _literal(node: ast.Literal) -> Fn:
    value = node.value
    return lambda env: value


def _name(node: ast.Name) -> Fn:
    name = node.name
    return lambda env: env.get(name)


def _field(node: ast.Field) -> Fn:
    path = ast.path_of(node)
    if path is not None:
        return path_getter(path)
    target = compile_expr(node.target)
    name = node.name

    def get(env: Env) -> Any:
        value = target(env)
        return value.get(name) if type(value) is dict else None

    return get


def path_getter(path: tuple[str, ...]) -> Fn:
    """Fast reader of a dotted path; unrolled for the common depths."""
    if len(path) == 1:
        (a,) = path
        return lambda env: env.get(a)
    if len(path) == 2:
        a, b = path

        def get2(env: Env) -> Any:
            v = env.get(a)
            return v.get(b) if type(v) is dict else None

        return get2
    if len(path) == 3:
        a, b, c = path

        def get3(env: Env) -> Any:
            v = env.get(a)
            if type(v) is not dict:
                return None
            v = v.get(b)
            return v.get(c) if type(v) is dict else None

        return get3
    head, rest = path[0], path[1:]

    def get_n(env: Env) -> Any:
        v = env.get(head)
        for name in rest:
            if type(v) is not dict:
                return None
            v = v.get(name)
        return v

    return get_n


def _unary(node: ast.Unary) -> Fn:
    operand = compile_expr(node.operand)
    if node.op == "not":
        return lambda env: operand(env) is not True

    def negate(env: Env) -> Any:
        value = operand(env)
        return None if value is None else arith.negate(value)

    return negate


def _logical(node: ast.Logical) -> Fn:
    fused = _fused_and(node.operands) if node.op == "and" else None
    if fused is not None:
        return fused
    parts = [compile_expr(o) for o in node.operands]
    return all_of(parts) if node.op == "and" else any_of(parts)


def _fused_and(nodes: Sequence[ast.Node]) -> Callable[[Env], bool] | None:
    """`r.a == "x" and r.b >= 2 ...`: tests of fields of one root, in one closure.

    The most common shape of a rule. Each test is `x is not None and x OP value`
    (see _guarded_test), so the root is read once and no test needs a closure of
    its own; the result is all_of's over the unfused tests. None for other shapes.
    """
    tests = [_guarded_test(n) for n in nodes]
    if any(t is None for t in tests) or len({t[0] for t in tests}) != 1:  # type: ignore[index]
        return None
    root = tests[0][0]  # type: ignore[index]
    parts = tuple((b, op, value) for _, b, op, value in tests)  # type: ignore[misc]
    if len(parts) == 2:
        return _fused2(root, *parts)

    def fused(env: Env) -> bool:
        v = env.get(root)
        if type(v) is not dict:
            return False  # every field reads null, and each test is false for null
        for b, op, value in parts:
            x = v.get(b)
            if x is None or op(x, value) is not True:
                return False
        return True

    return fused


def _fused2(
    root: str, first: tuple[str, Any, Any], second: tuple[str, Any, Any]
) -> Callable[[Env], bool]:
    """_fused_and unrolled for two tests, the most common count."""
    (b1, op1, value1), (b2, op2, value2) = first, second
    if op1 is operator.eq and op2 is operator.eq:
        # Two equalities (`payment_method == "np" and np_result == "ng"`) inline: a
        # null field is unequal to the constant without a test of its own.

        def equal2(env: Env) -> bool:
            v = env.get(root)
            if type(v) is not dict:
                return False
            return (v.get(b1) == value1) is True and (v.get(b2) == value2) is True

        return equal2

    def fused2(env: Env) -> bool:
        v = env.get(root)
        if type(v) is not dict:
            return False
        x = v.get(b1)
        if x is None or op1(x, value1) is not True:
            return False
        x = v.get(b2)
        return x is not None and op2(x, value2) is True

    return fused2


def _guarded_test(node: ast.Node) -> tuple[str, str, Callable[[Any, Any], Any], Any] | None:
    """(root, field, operator, value) of a `root.field OP value` test that is false for a
    null field and otherwise just `x OP value`; None for any other test.

    That holds for `<`, `<=`, `>`, `>=` and for `==` with a text, a date or an instant;
    for `==` with a number other than 0 and 1 too, since no bool can equal it (True ==
    1 in Python, not in the language). `!=` is true for null: it is not fused.
    """
    if not isinstance(node, ast.Compare) or not isinstance(node.right, ast.Literal):
        return None
    path, value = ast.path_of(node.left), node.right.value
    if path is None or len(path) != 2 or value is None:
        return None
    if node.op == "==":
        if isinstance(value, bool) or (isinstance(value, int | Decimal) and value in (0, 1)):
            return None
        return path[0], path[1], operator.eq, value
    compare = _ORDER.get(node.op)
    return None if compare is None else (path[0], path[1], compare, value)


def all_of(parts: list[Fn]) -> Callable[[Env], bool]:
    """`and` without a generator per call: this runs for every rule of every decision."""
    if len(parts) == 1:
        (a,) = parts
        return lambda env: a(env) is True
    if len(parts) == 2:
        a, b = parts
        return lambda env: a(env) is True and b(env) is True
    if len(parts) == 3:
        a, b, c = parts
        return lambda env: a(env) is True and b(env) is True and c(env) is True

    def every(env: Env) -> bool:
        for part in parts:  # noqa: SIM110 - a loop is faster than all() over a generator
            if part(env) is not True:
                return False
        return True

    return every


def any_of(parts: list[Fn]) -> Callable[[Env], bool]:
    if len(parts) == 2:
        a, b = parts
        return lambda env: a(env) is True or b(env) is True

    def some(env: Env) -> bool:
        for part in parts:  # noqa: SIM110 - a loop is faster than any() over a generator
            if part(env) is True:
                return True
        return False

    return some


def _compare(node: ast.Compare) -> Fn:
    fused = _null_test(node) or _text_membership(node)
    if fused is not None:
        return fused
    left, right = compile_expr(node.left), compile_expr(node.right)
    op = node.op
    constant = isinstance(node.right, ast.Literal) and node.right.value is not None
    if constant and op not in ("in", "not in"):
        value = node.right.value  # type: ignore[attr-defined]
        path = ast.path_of(node.left)
        if path is not None and len(path) == 2:
            return _compare_field_constant(path[0], path[1], op, value)
        return _compare_constant(left, op, value)
    paths = ast.path_of(node.left), ast.path_of(node.right)
    if op not in ("in", "not in") and all(p is not None and len(p) == 2 for p in paths):
        return _compare_fields(paths[0], paths[1], op)  # type: ignore[arg-type]
    if op == "==":
        return lambda env: _equal(left(env), right(env))
    if op == "!=":
        return lambda env: not _equal(left(env), right(env))
    if op == "in":
        return lambda env: _member(left(env), right(env))
    if op == "not in":
        return lambda env: not _member(left(env), right(env))
    compare = _ORDER[op]

    def ordered(env: Env) -> bool:
        a, b = left(env), right(env)
        return a is not None and b is not None and compare(a, b)

    return ordered


def _null_test(node: ast.Compare) -> Fn | None:
    """`x == null` and `x != null` (either side): whether x is null, in one closure for a
    path of one or two names (`derived.blacklist_entry != null`, `e != null` in a lambda).
    Rules and derived values test for null more than for anything else."""
    if node.op not in ("==", "!="):
        return None
    if isinstance(node.right, ast.Literal) and node.right.value is None:
        other = node.left
    elif isinstance(node.left, ast.Literal) and node.left.value is None:
        other = node.right
    else:
        return None
    absent = node.op == "=="
    path = ast.path_of(other)
    if path is not None and len(path) == 1:
        (a,) = path
        if absent:
            return lambda env: env.get(a) is None
        return lambda env: env.get(a) is not None
    if path is not None and len(path) == 2:
        a, b = path
        if absent:

            def missing(env: Env) -> bool:
                v = env.get(a)
                return type(v) is not dict or v.get(b) is None

            return missing

        def present(env: Env) -> bool:
            v = env.get(a)
            return type(v) is dict and v.get(b) is not None

        return present
    value = compile_expr(other)
    if absent:
        return lambda env: value(env) is None
    return lambda env: value(env) is not None


def _text_membership(node: ast.Compare) -> Fn | None:
    """`x in ["住所なし", "電話番号なし"]`: a set of the texts, made once, instead of the list
    made and compared item by item per decision. Only texts: a text equals a text alone, while
    1 and true, equal for a Python set, are not equal in the language."""
    items = node.right.items if isinstance(node.right, ast.ListLit) else ()
    if node.op not in ("in", "not in") or not items:
        return None
    if not all(isinstance(i, ast.Literal) and type(i.value) is str for i in items):
        return None
    texts = frozenset(i.value for i in items)  # type: ignore[attr-defined]
    left = compile_expr(node.left)

    def member(env: Env) -> bool:
        x = left(env)
        return isinstance(x, str) and x in texts  # null is in no list

    return member if node.op == "in" else lambda env: not member(env)


def _compare_constant(left: Fn, op: str, value: Any) -> Fn:
    """The common `field OP constant`, with the null and bool rules folded in."""
    if op in ("==", "!="):
        if isinstance(value, bool | int | Decimal):
            # True == 1 in Python, not in the language: compare the bool-ness too.
            is_bool = type(value) is bool

            def equal(env: Env) -> bool:
                a = left(env)
                return a == value and (type(a) is bool) == is_bool

            return equal if op == "==" else lambda env: not equal(env)
        # Texts, dates, instants: null or another type is simply unequal.
        if op == "==":
            return lambda env: left(env) == value
        return lambda env: left(env) != value
    compare = _ORDER[op]

    def ordered(env: Env) -> bool:
        a = left(env)
        return a is not None and compare(a, value)

    return ordered


def _compare_field_constant(a: str, b: str, op: str, value: Any) -> Fn:
    """`root.field OP constant` in one closure: the most common condition of all."""
    if op in ("==", "!="):
        if isinstance(value, bool | int | Decimal):
            is_bool = type(value) is bool

            def equal(env: Env) -> bool:
                v = env.get(a)
                if type(v) is not dict:
                    return False
                x = v.get(b)
                return x == value and (type(x) is bool) == is_bool

            return equal if op == "==" else lambda env: not equal(env)

        def same(env: Env) -> bool:
            v = env.get(a)
            return type(v) is dict and v.get(b) == value

        return same if op == "==" else lambda env: not same(env)
    compare = _ORDER[op]

    def ordered(env: Env) -> bool:
        v = env.get(a)
        if type(v) is not dict:
            return False
        x = v.get(b)
        return x is not None and compare(x, value)

    return ordered


def _compare_fields(left: tuple[str, ...], right: tuple[str, ...], op: str) -> Fn:
    """`order.paid_amount != order.total` in one closure: both reads and _equal inline."""
    (a, b), (c, d) = left, right
    if op in ("==", "!="):
        unequal = op == "!="

        def equal(env: Env) -> bool:
            v, w = env.get(a), env.get(c)
            x = v.get(b) if type(v) is dict else None
            y = w.get(d) if type(w) is dict else None
            if x is None or y is None:
                return (x is None and y is None) is not unequal
            # bool is an int in Python; in the language true is not 1.
            return ((type(x) is bool) == (type(y) is bool) and bool(x == y)) is not unequal

        return equal
    compare = _ORDER[op]

    def ordered(env: Env) -> bool:
        v, w = env.get(a), env.get(c)
        x = v.get(b) if type(v) is dict else None
        y = w.get(d) if type(w) is dict else None
        return x is not None and y is not None and compare(x, y)

    return ordered


def _equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    # bool is an int in Python; in the language true is not 1.
    if (type(a) is bool) != (type(b) is bool):
        return False
    return bool(a == b)


def _member(item: Any, items: Any) -> bool:
    if item is None or items is None:
        return False
    return any(_equal(item, candidate) for candidate in items)


_OPERATIONS = {"+": arith.add, "-": arith.subtract, "*": arith.multiply, "/": arith.divide}


def _arith(node: ast.Arith) -> Fn:
    """Decimal arithmetic in the language's own contexts (engine/lang/functions.py), never
    the thread's: `+ - *` exact, `/` rounded once."""
    left, right = compile_expr(node.left), compile_expr(node.right)
    operation = _OPERATIONS[node.op]
    division = node.op == "/"

    def compute(env: Env) -> Any:
        a, b = left(env), right(env)
        if a is None or b is None:
            return None
        if division and b == 0:
            raise EvalFailure(node, Msg("division by zero"))
        try:
            return operation(a, b)
        except ArithmeticError as exc:
            raise EvalFailure(node, message_of(exc)) from None

    return compute


def _listlit(node: ast.ListLit) -> Fn:
    items = tuple(compile_expr(i) for i in node.items)
    return lambda env: [i(env) for i in items]


def _recordlit(node: ast.RecordLit) -> Fn:
    pairs = tuple((k, compile_expr(v)) for k, v in zip(node.keys, node.values, strict=True))
    return lambda env: {k: v(env) for k, v in pairs}


def _lambda(node: ast.Lambda) -> Fn:
    raise EvalFailure(node, Msg("a lambda is only allowed as a function argument"))


def _lazy(node: ast.Call) -> Fn | None:
    """`if` and `coalesce` compute only the arguments they need (a look-up in the branch
    not taken is never made); their results are the same as the eager functions'."""
    if node.name == "if" and len(node.args) == 3:
        test = compile_expr(node.args[0])
        yes, no = (a.value if isinstance(a, ast.Literal) else _VARIES for a in node.args[1:])
        if yes is not _VARIES and no is not _VARIES:  # `if(settings.by_name, 1, 0)`
            return lambda env: yes if test(env) is True else no  # no call for a constant
        then = compile_expr(node.args[1])
        if no is not _VARIES:  # `if(x, order.customer.name, null)`
            return lambda env: then(env) if test(env) is True else no
        other = compile_expr(node.args[2])
        return lambda env: then(env) if test(env) is True else other(env)
    args = [compile_expr(a) for a in node.args]
    if node.name == "coalesce":

        def first_present(env: Env) -> Any:
            for arg in args:
                value = arg(env)
                if value is not None:
                    return value
            return None

        return first_present
    return None


_VARIES = object()  # an argument that is not a constant


def _call(node: ast.Call) -> Fn:
    if node.name in ("if", "coalesce"):
        lazy = _lazy(node)
        if lazy is not None:
            return lazy
    function = FUNCTIONS[node.name]
    impl = function.impl
    lambdas = set(function.lambda_args)
    args: list[tuple[bool, Fn]] = []
    for index, arg in enumerate(node.args):
        if index in lambdas and isinstance(arg, ast.Lambda):
            args.append((True, _lambda_arg(arg)))
        else:
            args.append((False, compile_expr(arg)))
    nulls = function.nulls
    fns = [fn for _, fn in args]
    if nulls == "propagate" and len(fns) in (1, 2):
        return _fixed_call(node, impl, fns)
    if nulls in ("none", "lists") and len(fns) in (1, 2, 3):
        return _plain_call(node, impl, fns, empty_first=nulls == "lists")

    def call(env: Env) -> Any:
        values = [fn(env) for _, fn in args]
        if nulls == "propagate" and any(v is None for v in values):
            return None
        if nulls == "lists" and values[0] is None:
            values[0] = []
        try:
            return impl(*values)
        except EvalFailure:
            raise
        except (ValueError, ArithmeticError, TypeError, OverflowError) as exc:
            raise EvalFailure(node, _failed(node.name, exc)) from None

    return call


_FAILURES = (ValueError, ArithmeticError, TypeError, OverflowError)


def _fixed_call(node: ast.Call, impl: Callable[..., Any], fns: list[Fn]) -> Fn:
    """Calls of one or two arguments (most of them: date(), normalize_postal(), add_days()),
    without building an argument list per call: derived values run for every decision."""
    if len(fns) == 1:
        (first,) = fns

        def call1(env: Env) -> Any:
            a = first(env)
            if a is None:
                return None
            try:
                return impl(a)
            except _FAILURES as exc:
                raise EvalFailure(node, _failed(node.name, exc)) from None

        return call1
    first, second = fns

    def call2(env: Env) -> Any:
        a = first(env)
        if a is None:
            return None
        b = second(env)
        if b is None:
            return None
        try:
            return impl(a, b)
        except _FAILURES as exc:
            raise EvalFailure(node, _failed(node.name, exc)) from None

    return call2


def _plain_call(
    node: ast.Call, impl: Callable[..., Any], fns: list[Fn], *, empty_first: bool
) -> Fn:
    """Calls that take nulls as they come (look-ups, list functions: a null list reads
    as empty), for one to three arguments, without an argument list per call."""

    def fail(exc: Exception) -> EvalFailure:
        return EvalFailure(node, _failed(node.name, exc))

    if len(fns) == 1:
        (first,) = fns

        def call1(env: Env) -> Any:
            a = first(env)
            try:
                return impl([] if a is None and empty_first else a)
            except _FAILURES as exc:
                raise fail(exc) from None

        return call1
    if len(fns) == 2:
        first, second = fns

        def call2(env: Env) -> Any:
            a = first(env)
            try:
                return impl([] if a is None and empty_first else a, second(env))
            except _FAILURES as exc:
                raise fail(exc) from None

        return call2
    first, second, third = fns

    def call3(env: Env) -> Any:
        a = first(env)
        try:
            return impl([] if a is None and empty_first else a, second(env), third(env))
        except _FAILURES as exc:
            raise fail(exc) from None

    return call3


def _lambda_arg(node: ast.Lambda) -> Fn:
    """At run time, a Python function item -> value closing over the current env."""
    body = compile_expr(node.body)
    param = node.param

    def bind(env: Env) -> Callable[[Any], Any]:
        # One copy of the env per call of the function, not per item: the body only reads
        # it, the items are visited one after the other, and no value keeps the env.
        inner = dict(env)

        def apply(item: Any) -> Any:
            inner[param] = item
            return body(inner)

        return apply

    return bind


_COMPILERS: dict[type, Callable[[Any], Fn]] = {
    ast.Literal: _literal,
    ast.Name: _name,
    ast.Field: _field,
    ast.Unary: _unary,
    ast.Logical: _logical,
    ast.Compare: _compare,
    ast.Arith: _arith,
    ast.ListLit: _listlit,
    ast.RecordLit: _recordlit,
    ast.Lambda: _lambda,
    ast.Call: _call,
}
