"""The language's decimal arithmetic: exact `+ - *`, one rounding per division, the same
digits in every thread whatever its decimal context.

Python rounds each Decimal result to its thread's context (28 digits by default): a
30-digit fact would be rounded before percent_of rounds it again, and a thread that set
another context would decide otherwise. The language passes its own contexts.
"""

from __future__ import annotations

import decimal
import threading
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.lang.functions import EXACT_DIGITS, QUOTIENT_DIGITS
from engine.lang.parser import parse
from engine.lang.pycompile import EvalFailure, compile_expr, fold_constants

ALMOST_50 = Decimal("49.9999999999999999999999999999")  # 30 digits, as a fact may have
BIG = Decimal("1000000000000000000000000000.5")  # 29 digits


def value_of(text: str, **o: Any) -> Any:
    return compile_expr(fold_constants(parse(text)))({"o": o})


@pytest.mark.parametrize(
    ("percent", "expected"),
    [
        (ALMOST_50, 0),  # 0.499...: 28 digits made it 0.5, then 1
        (Decimal(50), 1),  # 0.5 rounds half up
        (Decimal("50.0000000000000000000000000001"), 1),
    ],
)
def test_percent_of_a_30_digit_percent_rounds_once(percent: Decimal, expected: int) -> None:
    assert value_of("percent_of(o.i, o.n)", i=1, n=percent) == expected


def test_sums_differences_products_and_negations_keep_every_digit() -> None:
    assert str(value_of("o.n + 0", n=BIG)) == "1000000000000000000000000000.5"
    assert str(value_of("o.n - 1", n=BIG)) == "999999999999999999999999999.5"
    assert str(value_of("-o.n", n=ALMOST_50)) == "-49.9999999999999999999999999999"
    assert Fraction(value_of("o.n * o.n", n=ALMOST_50)) == Fraction(ALMOST_50) ** 2
    assert value_of("sum([o.n, o.n, o.i])", n=BIG, i=1) == Decimal("2000000000000000000000000002")
    assert value_of("-o.n", n=Decimal("0")) == 0 and str(value_of("-o.n", n=Decimal(0))) == "0"


def test_a_division_is_rounded_once_to_34_digits() -> None:
    assert value_of("o.i * o.n / 100", i=1, n=ALMOST_50) == Decimal(
        "0.499999999999999999999999999999"
    )
    assert value_of("o.i / 4", i=1) == Decimal("0.25")
    assert value_of("1 / 3") == Decimal("0." + "3" * QUOTIENT_DIGITS)
    assert value_of("2 / 3") == Decimal("0." + "6" * (QUOTIENT_DIGITS - 1) + "7")


def test_round_half_up_and_percent_of_take_30_digits() -> None:
    thirty = Decimal("12345678901234567890123456789.5")
    assert value_of("round_half_up(o.n)", n=thirty) == 12345678901234567890123456790
    assert value_of("round_half_up(o.n)", n=-thirty) == -12345678901234567890123456790
    assert value_of("round_half_up(o.n)", n=Decimal("1E+150")) == 10**150
    amount = Decimal("123456789012345678901234567890")
    assert value_of("percent_of(o.n, 1)", n=amount) == 1234567890123456789012345679


def test_a_result_out_of_range_says_so_in_words() -> None:
    with pytest.raises(EvalFailure) as caught:
        value_of("o.n * o.n", n=Decimal("1E+999999"))
    assert caught.value.message == "the result is out of range"
    with pytest.raises(EvalFailure) as caught:
        value_of("percent_of(o.n, o.n)", n=Decimal("1E+999999"))
    assert "out of range" in caught.value.message and "<class" not in caught.value.message


def test_the_results_are_the_same_in_any_thread_and_under_any_decimal_context() -> None:
    expressions = ["percent_of(o.i, o.n)", "o.i * o.n / 100", "o.n + o.n", "-o.n", "1 / 3"]

    def results() -> list[Any]:
        return [value_of(e, i=1, n=ALMOST_50) for e in expressions]

    expected = results()
    found: list[Any] = []

    def in_a_thread() -> None:
        decimal.getcontext().prec = 5  # a thread's own context, as a library may set it
        decimal.getcontext().rounding = decimal.ROUND_DOWN
        found.extend(results())  # Decimal's own `*` here would give 5 digits

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()
    assert [str(v) for v in found] == [str(v) for v in expected]
    with decimal.localcontext(decimal.Context(prec=3)):
        assert results() == expected
    assert expected[0] == 0 and expected[2] == Decimal("99.9999999999999999999999999998")


def decimals(digits: int = 30) -> st.SearchStrategy[Decimal]:
    """Numbers of up to `digits` significant digits, as facts and constants hold them."""
    coefficients = st.integers(-(10**digits) + 1, 10**digits - 1)
    return st.builds(lambda c, e: Decimal(f"{c}E{e}"), coefficients, st.integers(-30, 30))


numbers = st.one_of(decimals(), st.integers(-(2**63), 2**63 - 1))


@settings(max_examples=300, deadline=None)
@given(a=numbers, b=numbers)
def test_sums_differences_and_products_of_allowed_values_are_exact(a: Any, b: Any) -> None:
    exact = {"+": Fraction(a) + Fraction(b), "-": Fraction(a) - Fraction(b)}
    exact["*"] = Fraction(a) * Fraction(b)
    for op, value in exact.items():
        assert Fraction(value_of(f"o.a {op} o.b", a=a, b=b)) == value, op
    assert EXACT_DIGITS >= 61  # what the widest of these results needs


@settings(max_examples=300, deadline=None)
@given(a=numbers, b=numbers.filter(bool))
def test_a_quotient_is_the_exact_one_rounded_once(a: Any, b: Any) -> None:
    quotient = value_of("o.a / o.b", a=a, b=b)
    exact = Fraction(a) / Fraction(b)
    assert len(quotient.as_tuple().digits) <= QUOTIENT_DIGITS
    # within half a unit of its last digit of the exact quotient
    unit = Fraction(Decimal((0, (1,), quotient.as_tuple().exponent)))
    assert abs(Fraction(quotient) - exact) <= unit / 2
