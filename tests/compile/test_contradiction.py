"""engine/compile/contradiction.py: conditions that can never all be true.

The warning it leads to must never be given for a rule that could apply: the property test
evaluates every conjunction it calls impossible on values of every kind (nulls, bools beside
0 and 1, texts, numbers on both sides of each constant) with the language's own closures.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.compile.contradiction import contradiction
from engine.compile.stages import compile_document
from engine.lang import ast
from engine.lang.parser import parse
from engine.lang.pycompile import compile_condition, fold_constants
from engine.source.yaml import parse_yaml
from tests import FIXTURES


def conjuncts(*conditions: str) -> list[ast.Node]:
    return [c for text in conditions for c in ast.conjuncts(fold_constants(parse(text)))]


def culprit(*conditions: str) -> int | None:
    """The index of the conjunct found to contradict the ones before it, or None."""
    nodes = conjuncts(*conditions)
    found = contradiction(nodes)
    return None if found is None else nodes.index(found)


@pytest.mark.parametrize(
    ("conditions", "index"),
    [
        (["false"], 0),
        (["null"], 0),
        (["o.n > 5 and o.n < 3"], 1),
        (["o.n > 5", "o.n < 3"], 1),  # across the items of a `when` list
        (["o.n >= 5 and o.n <= 5"], None),  # exactly 5
        (["o.n > 5 and o.n <= 5"], 1),
        (["5 < o.n and 5 >= o.n"], 1),  # the constant on the left
        (["o.n > -1 and o.n < -3"], 1),
        (["o.n == 2 and o.n > 2.5"], 1),
        (["o.n == 2 and o.n == 2.0"], None),  # the same number
        (['o.m == "np" and o.m == "ng"'], 1),
        (['o.m == "np" and o.m != "np"'], 1),
        (['o.m in ["np", "ng"] and o.m not in ["ng", "np"]'], 1),
        (['o.m in ["np", "ng"] and o.m in ["card"]'], 1),
        (['o.m in ["np", "ng"] and o.m in ["ng", "card"]'], None),
        (["o.n == null and o.n > 0"], 1),  # an ordering is false on null
        (["o.n != null and o.n == null"], 1),
        (["o.flag == false and o.flag"], 1),
        (["o.flag and not o.flag"], None),  # `not` is not followed (0 and "" are values)
        (["o.n > 5 or o.n < 3", "o.n == 4"], None),  # an `or` says nothing here
        (["o.n > 5 and p.n < 3"], None),  # two values
        (["o.n > 5 and o.n < settings.limit"], None),  # not a constant
        (['o.d > date("2024-01-01") and o.d < date("2023-01-01")'], None),  # not compared
        (["true", "o.n > 1"], None),
    ],
)
def test_what_is_found_and_where(conditions: list[str], index: int | None) -> None:
    assert culprit(*conditions) == index


CONSTANTS = ["0", "1", "2", "-1", "2.5", "1.0", "true", "false", "null", '"np"', '"ng"', '""']
VALUES: list[Any] = [None, True, False, 0, 1, 2, -1, 3, Decimal("2.5"), Decimal("1.0")]
VALUES += [Decimal("0.5"), Decimal("1.5"), Decimal("2.25"), Decimal("2.6"), Decimal("-0.5"), -2]
VALUES += ["np", "ng", "", "x"]  # a number between and beyond each constant, and texts
LISTS = ['["np", "ng"]', '["ng"]', "[1, 2]", "[true]", "[null, 0]", "[]"]

tests = st.one_of(
    st.builds(
        "o.n {} {}".format,
        st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
        st.sampled_from(CONSTANTS),
    ),
    st.builds(
        "{} {} o.n".format, st.sampled_from(CONSTANTS), st.sampled_from(["==", "!=", "<", ">="])
    ),
    st.builds("o.n {} {}".format, st.sampled_from(["in", "not in"]), st.sampled_from(LISTS)),
    st.sampled_from(["o.n", "not o.n"]),
)


def holds(conditions: list[str], value: Any) -> bool:
    check = compile_condition(fold_constants(parse(" and ".join(conditions))))
    try:
        return check({"o": {"n": value}}) is True
    except Exception:  # ordering a text with a number: refused when a policy is compiled
        return False


@settings(max_examples=800, deadline=None)
@given(st.lists(tests, min_size=1, max_size=4))
def test_a_conjunction_called_impossible_is_true_for_no_value(conditions: list[str]) -> None:
    if culprit(*conditions) is None:
        return
    assert not any(holds(conditions, v) for v in VALUES), conditions


POLICY = """\
kimari: 1
id: never
title: {ja: 決して適用されないルール}
facts: schemas/order.facts.schema.json
rules:
  - id: crossed-bounds
    refs: [TS-4]
    when:
      - order.total > 100000
      - order.total <= 50000
  - id: two-methods
    refs: [TS-4]
    when: order.payment.method == "np" and order.payment.method in ["card", "cod"]
  - id: switched-off
    refs: [TS-4]
    when: "false"
  - id: fine
    refs: [TS-4]
    when: order.total >= 50000 and order.total <= 50000
"""


def test_the_compiler_warns_at_the_condition_that_contradicts_and_keeps_the_rule() -> None:
    policy = compile_document(parse_yaml(POLICY, str(FIXTURES / "bad" / "never.yaml")))
    try:
        assert [w.render().removeprefix(f"{FIXTURES / 'bad'}/") for w in policy.warnings] == [
            "never.yaml:10:9: warning: rule_never_applies: rule 'crossed-bounds' can never "
            "apply: `order.total <= 50000` contradicts its other conditions (correct the "
            "condition, or delete the rule if it is no longer wanted)",
            "never.yaml:13:44: warning: rule_never_applies: rule 'two-methods' can never "
            'apply: `order.payment.method in ["card", "cod"]` contradicts its other '
            "conditions (correct the condition, or delete the rule if it is no longer wanted)",
            "never.yaml:16:12: warning: rule_never_applies: rule 'switched-off' can never "
            "apply: `false` is never true (correct the condition, or delete the rule if it is "
            "no longer wanted)",
        ]
        assert [w.rule_id for w in policy.warnings] == [
            "crossed-bounds",
            "two-methods",
            "switched-off",
        ]
        assert len(policy.rules) == 4  # warned about, not refused
    finally:
        policy.close()
