"""The fused closures of the Python backend compute what the closures they replace do.

A conjunction of `root.field OP constant` tests on one root, a comparison of two
fields, and a test for null are compiled into one closure each (the common shapes of a
rule); an `if` with constant branches calls no closure for them. These tests compare
them with the unfused closures on values of every kind, nulls, bools beside 0 and 1,
missing roots and roots that are no record.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.lang import ast
from engine.lang.functions import FUNCTIONS
from engine.lang.parser import parse
from engine.lang.pycompile import (
    _ORDER,
    _equal,
    _member,
    all_of,
    compile_condition,
    compile_conditions,
    compile_expr,
    fold_constants,
    path_getter,
)

JST = dt.timezone(dt.timedelta(hours=9))
OPS = ["==", "!=", "<", "<=", ">", ">="]
CONSTANTS = ['"np"', '"ng"', '""', "0", "1", "2", "-1", "2.5", "1.0", "true", "false", "5000"]
CONSTANTS += ['date("2024-01-01")', 'datetime("2024-01-01T00:00:00+09:00")']
VALUES: list[Any] = [None, True, False, 0, 1, 2, -1, 5000, Decimal("1"), Decimal("0")]
VALUES += [Decimal("2.5"), "np", "ng", "", dt.date(2024, 1, 1), dt.date(2023, 12, 31)]
VALUES += [dt.datetime(2024, 1, 1, tzinfo=JST), [1], {"a": 1}]
FIELDS = ["a", "b", "c"]


def node_of(text: str) -> ast.Node:
    return fold_constants(parse(text))


def outcome(fn: Any, env: dict[str, Any]) -> Any:
    """The result, or the kind of exception (ordering a text with a number raises)."""
    try:
        return ("value", fn(env))
    except Exception as exc:  # both sides must fail alike
        return ("raised", type(exc), str(exc))


tests = st.builds(
    "{}.{} {} {}".format,
    st.sampled_from(["r", "r", "r", "s"]),
    st.sampled_from(FIELDS),
    st.sampled_from(OPS),
    st.sampled_from(CONSTANTS),
)
roots = st.one_of(
    st.fixed_dictionaries({}, optional={f: st.sampled_from(VALUES) for f in FIELDS}),
    st.sampled_from([None, "np", 1, [1]]),
)
envs = st.fixed_dictionaries({}, optional={"r": roots, "s": roots})


@settings(max_examples=600, deadline=None)
@given(parts=st.lists(tests, min_size=2, max_size=4), env=envs)
def test_a_fused_conjunction_gives_the_unfused_result(parts: list[str], env: dict) -> None:
    nodes = [node_of(p) for p in parts]
    unfused = all_of([compile_expr(n) for n in nodes])
    as_and = compile_condition(node_of(" and ".join(parts)))
    as_list = compile_conditions(nodes)
    expected = outcome(unfused, env)
    assert outcome(as_and, env) == expected
    assert outcome(as_list, env) == expected
    if expected[0] == "value":
        assert type(expected[1]) is bool


def test_common_conjunctions_are_fused_and_others_are_not() -> None:
    def name(text: str) -> str:
        return compile_condition(node_of(text)).__qualname__

    assert "equal2" in name('o.m == "np" and o.r == "ng"')
    assert "fused2" in name('o.n >= 2 and o.m == "card"')
    assert "_fused_and" in name('o.n >= 2 and o.m == "card" and o.t > 100000')
    assert "equal2" in name("o.n == 2 and o.t == 5000")
    # != is true for null, == 0/1/true can meet a bool, another root: all unfused
    assert "all_of" in name('o.m != "np" and o.r == "ng"')
    assert "all_of" in name('o.n == 1 and o.r == "ng"')
    assert "all_of" in name('o.n == true and o.r == "ng"')
    assert "all_of" in name('o.m == "np" and p.r == "ng"')


def unfused_compare(left: str, op: str, right: str) -> Any:
    get_left, get_right = path_getter(tuple(left.split("."))), path_getter(tuple(right.split(".")))
    if op in ("==", "!="):
        return lambda env: _equal(get_left(env), get_right(env)) is (op == "==")
    compare = _ORDER[op]

    def ordered(env: dict[str, Any]) -> bool:
        a, b = get_left(env), get_right(env)
        return a is not None and b is not None and compare(a, b)

    return ordered


@settings(max_examples=600, deadline=None)
@given(
    left=st.sampled_from(["r.a", "r.b", "s.a"]),
    op=st.sampled_from(OPS),
    right=st.sampled_from(["r.a", "r.b", "s.b"]),
    env=envs,
)
def test_a_fused_comparison_of_two_fields_gives_the_unfused_result(
    left: str, op: str, right: str, env: dict
) -> None:
    fused = compile_condition(node_of(f"{left} {op} {right}"))
    assert "_compare_fields" in fused.__qualname__
    assert outcome(fused, env) == outcome(unfused_compare(left, op, right), env)


def test_each_fused_test_agrees_with_its_closure_for_every_kind_of_value() -> None:
    """Every test beside tests that hold, in each position and each unrolled size."""
    for op in OPS:
        for constant in CONSTANTS:
            test = f"r.a {op} {constant}"
            shapes = [
                f'{test} and r.b == "np"',
                f'r.b == "np" and {test}',
                f'r.b >= "" and {test} and r.b == "np"',
                f'r.b >= "" and r.b == "np" and r.b <= "np" and {test}',
            ]
            for x in [*VALUES, "missing"]:
                env = {"r": {"b": "np"} if x == "missing" else {"a": x, "b": "np"}}
                for text in shapes:
                    node = node_of(text)
                    unfused = all_of([compile_expr(o) for o in node.operands])  # type: ignore[attr-defined]
                    assert outcome(compile_condition(node), env) == outcome(unfused, env), (text, x)


NULL_TESTS = ["r.a == null", "r.a != null", "null == r.a", "null != r.a", "r == null"]
NULL_TESTS += ["r != null", "r.a.b == null", "r.a.b != null", "null != r.a.b"]


@pytest.mark.parametrize("text", NULL_TESTS)
def test_a_test_for_null_gives_what_equality_with_null_gives(text: str) -> None:
    node = node_of(text)
    assert "_null_test" in compile_condition(node).__qualname__
    left, right = compile_expr(node.left), compile_expr(node.right)  # type: ignore[attr-defined]
    wanted = node.op == "=="  # type: ignore[attr-defined]
    for x in [*VALUES, "missing"]:
        for env in (
            {"r": {} if x == "missing" else {"a": x}},
            {"r": x},
            {"r": {"a": {"b": x}}},
            {},
        ):
            as_equality = _equal(left(env), right(env)) is wanted
            assert outcome(compile_condition(node), env) == ("value", as_equality), (text, env)


@pytest.mark.parametrize(
    "text",
    ["if(r.a, 1, 0)", 'if(r.a, "氏名", null)', "if(r.a == 1, r.b, null)", "if(r.a, r.b, r.c)"],
)
def test_an_if_with_constant_branches_gives_what_the_eager_if_gives(text: str) -> None:
    node = node_of(text)
    lazy = compile_expr(node)
    eager = FUNCTIONS["if"].impl
    test, then, other = (compile_expr(a) for a in node.args)  # type: ignore[attr-defined]
    for x in [*VALUES, "missing"]:
        env = {"r": {"b": "np", "c": 2} if x == "missing" else {"a": x, "b": "np", "c": 2}}
        assert lazy(env) == eager(test(env), then(env), other(env)), (text, x)


@pytest.mark.parametrize(
    "text",
    ['r.a in ["np", "ng"]', 'r.a not in ["np", ""]', 'r.a.b in ["np"]', 'r in ["np", "1"]'],
)
def test_a_text_in_a_list_of_texts_gives_what_the_list_gives(text: str) -> None:
    node = node_of(text)
    assert "_text_membership" in compile_condition(node).__qualname__
    left, right = compile_expr(node.left), compile_expr(node.right)  # type: ignore[attr-defined]
    wanted = node.op == "in"  # type: ignore[attr-defined]
    for x in [*VALUES, "missing", "1", 1]:
        record = {} if x == "missing" else {"a": x}
        for env in ({"r": record}, {"r": x}, {"r": {"a": {"b": x}}}, {}):
            in_list = _member(left(env), right(env)) is wanted
            assert outcome(compile_condition(node), env) == ("value", in_list), (text, env)


def test_only_lists_of_texts_are_made_sets() -> None:
    """1 and true are one member of a Python set; in the language they are not equal."""
    for text in ["r.a in [1, 2]", "r.a in [true]", 'r.a in ["np", 1]', "r.a in r.b", "r.a in []"]:
        assert "_text_membership" not in compile_condition(node_of(text)).__qualname__, text
