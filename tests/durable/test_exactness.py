"""Which numbers no double holds exactly (the guards' `_inexact`), checked against its
definition: a Decimal of more than 15 significant digits that is not an integer of up to
53 bits, an int past 2^53. Its quick test reads the length of the number's text: a text
holds each of the digits, so at most 15 characters means at most 15 digits."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from engine.durable.conditions import EXACT_DIGITS, EXACT_INTEGER, _inexact


def by_definition(value: Decimal) -> bool:
    if len(value.as_tuple().digits) <= EXACT_DIGITS:
        return False
    if value == value.to_integral_value():
        return abs(value) > EXACT_INTEGER
    return len(value.normalize().as_tuple().digits) > EXACT_DIGITS


decimals = st.decimals(allow_nan=False, allow_infinity=False) | st.builds(
    lambda digits, exponent: Decimal(f"{digits}E{exponent}"),
    st.integers(-(10**20), 10**20),
    st.integers(-30, 30),
)


@given(decimals)
def test_the_quick_test_agrees_with_the_definition(value: Decimal) -> None:
    assert _inexact(value) is by_definition(value)


def test_both_sides_of_the_digit_and_integer_boundaries() -> None:
    assert not _inexact(Decimal("0.123456789012345"))  # 15 digits, 17 characters
    assert _inexact(Decimal("0.1234567890123456"))  # 16 digits
    assert not _inexact(Decimal("-12345678901234.5"))  # 15 digits, a sign and a point
    assert not _inexact(Decimal("1234567890123456.0"))  # an integer, written long
    assert _inexact(Decimal("12345678901234567.0"))  # an integer past 2^53
    assert not _inexact(Decimal(EXACT_INTEGER)) and _inexact(Decimal(EXACT_INTEGER + 1))
    assert not _inexact(Decimal("1E+20"))  # one digit: what 15-digit numbers compare with
    assert not _inexact(EXACT_INTEGER) and _inexact(-EXACT_INTEGER - 1)
    assert not _inexact(True) and not _inexact(None)
