"""Settings: their enums are read as their defaults and a request's values are (a date's
text parsed), listed in messages as JSON, and a value that is no finite number is refused."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from engine.compile.model import CompiledPolicy
from engine.compile.stages import compile_document
from engine.core.errors import InputError, PolicyError
from engine.runtime.evaluate import decide
from engine.source.yaml import parse_yaml
from tests import FIXTURES

BAD = FIXTURES / "bad"
AT = "2024-09-01T10:00:00+09:00"
FACTS = {"order": {"total": 5000, "payment": {"method": "np"}, "received_at": AT}}


def policy_of(settings: str, when: str = 'order.payment.method == "np"') -> CompiledPolicy:
    text = (
        "kimari: 1\nid: settings\ntitle: {ja: 設定}\n"
        "facts: schemas/order.facts.schema.json\n"
        f"settings:\n{settings}"
        "outcome:\n  held: {type: boolean, default: false}\n"
        f"rules:\n  - id: r1\n    refs: [TS-4]\n    when: {when}\n    then: {{held: true}}\n"
    )
    return compile_document(parse_yaml(text, str(BAD / "settings.yaml")))


def problems_of(settings: str, when: str = 'order.payment.method == "np"') -> list[str]:
    with pytest.raises(PolicyError) as caught:
        policy_of(settings, when)
    where = str(BAD) + "/"
    return [d.render().removeprefix(where) for d in caught.value.diagnostics if d.is_error]


def refusal(policy: CompiledPolicy, settings: dict[str, Any], backend: str) -> list[Any]:
    with pytest.raises(InputError) as caught:
        decide(policy, FACTS, at=AT, settings=settings, backend=backend)
    return [(d.code, d.pointer, d.message) for d in caught.value.diagnostics]


# -- a date setting's enum -----------------------------------------------------------------

CUTOFF = '  cutoff: {type: date, enum: ["2024-03-31", "2024-09-30"], default: "2024-03-31"}\n'
AT_CUTOFF = 'settings.cutoff == date("2024-09-30")'


@pytest.mark.parametrize("backend", ["durable", "python"])
def test_a_date_setting_with_an_enum_compiles_and_compares_a_request_as_a_date(
    backend: str,
) -> None:
    policy = policy_of(CUTOFF, AT_CUTOFF)
    assert policy.settings["cutoff"].enum == (date(2024, 3, 31), date(2024, 9, 30))
    assert decide(policy, FACTS, at=AT, backend=backend).outcome["held"] is False
    chosen = decide(policy, FACTS, at=AT, settings={"cutoff": "2024-09-30"}, backend=backend)
    assert chosen.outcome["held"] is True
    assert refusal(policy, {"cutoff": "2024-09-29"}, backend) == [
        (
            "setting_invalid",
            "/settings/cutoff",
            'setting \'cutoff\' must be one of ["2024-03-31", "2024-09-30"], got "2024-09-29"',
        )
    ]


def test_an_enum_value_that_is_no_date_is_refused_at_its_place() -> None:
    bad = '  cutoff: {type: date, enum: ["2024-03-31", "2024-02-30", 5], default: "2024-03-31"}\n'
    assert problems_of(bad, AT_CUTOFF.replace("09-30", "03-31")) == [
        "settings.yaml:6:45: invalid_setting: enum of setting 'cutoff': "
        '"2024-02-30" is not a valid date (YYYY-MM-DD)',
        "settings.yaml:6:59: invalid_setting: enum of setting 'cutoff': must be date, got 5",
    ]


def test_a_date_default_outside_its_enum_is_still_refused() -> None:
    outside = CUTOFF.replace('default: "2024-03-31"', 'default: "2024-04-01"')
    assert problems_of(outside, AT_CUTOFF) == [
        "settings.yaml:6:69: invalid_default: default \"2024-04-01\" of setting 'cutoff' is not "
        'one of ["2024-03-31", "2024-09-30"]'
    ]


# -- enums listed as JSON ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "given", "listed"),
    [
        ("{type: number, enum: [0.5, 1.5], default: 0.5}", 2, "[0.5, 1.5], got 2"),
        ("{type: boolean, enum: [true], default: true}", False, "[true], got false"),
        ('{type: string, enum: ["ａ", "b"], default: "b"}', "c", '["ａ", "b"], got "c"'),
        ("{type: integer, enum: [1, 2, 3], default: 1}", 4, "[1, 2, 3], got 4"),
    ],
)
def test_a_value_outside_the_enum_is_refused_with_the_enum_as_json(
    setting: str, given: Any, listed: str
) -> None:
    policy = policy_of(f"  s: {setting}\n", "settings.s != null")
    (problem,) = refusal(policy, {"s": given}, "python")
    assert problem == ("setting_invalid", "/settings/s", f"setting 's' must be one of {listed}")


def test_a_default_outside_the_enum_is_refused_with_the_enum_as_json() -> None:
    assert problems_of(
        "  s: {type: number, enum: [0.5, 1.5], default: 2.5}\n", "settings.s > 0"
    ) == [
        "settings.yaml:6:48: invalid_default: default 2.5 of setting 's' is not one of [0.5, 1.5]"
    ]


# -- NaN and Infinity ----------------------------------------------------------------------

RATE = "  rate: {type: number, default: 1.5, minimum: 0, maximum: 10}\n"


@pytest.mark.parametrize("backend", ["durable", "python"])
@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("NaN"), "NaN"),
        (Decimal("Infinity"), "Infinity"),
        (Decimal("-Infinity"), "-Infinity"),
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
    ],
)
def test_a_setting_that_is_no_finite_number_is_refused(
    backend: str, value: Any, shown: str
) -> None:
    policy = policy_of(RATE, "settings.rate > 1")
    assert refusal(policy, {"rate": value}, backend) == [
        (
            "setting_invalid",
            "/settings/rate",
            f"setting 'rate' must be a finite number, got {shown}",
        )
    ]
    assert decide(policy, FACTS, at=AT, settings={"rate": 2}, backend=backend).outcome["held"]
    assert not decide(policy, FACTS, at=AT, settings={"rate": Decimal("0.5")}).outcome["held"]


def test_an_integer_or_text_setting_given_nan_says_nan_not_null() -> None:
    policy = policy_of("  n: {type: integer, default: 1}\n", "settings.n > 0")
    (problem,) = refusal(policy, {"n": float("nan")}, "python")
    assert problem[2] == "setting 'n' must be a finite number, got NaN"


@pytest.mark.parametrize("backend", ["durable", "python"])
@pytest.mark.parametrize(
    ("given", "held"),
    [(Decimal("3.0"), True), (3.0, True), (Decimal("-0.0"), False), (Decimal("30E-1"), True)],
)
def test_an_integer_setting_takes_a_whole_number_however_it_is_written(
    backend: str, given: Any, held: bool
) -> None:
    """3.0 is an integer in JSON Schema: the service took it (a float) and the CLI, which reads
    it exactly (a Decimal), refused it as 'must be integer, got 3'."""
    policy = policy_of("  n: {type: integer, default: 1}\n", "settings.n > 0")
    assert decide(policy, FACTS, at=AT, settings={"n": given}, backend=backend).outcome == {
        "held": held
    }


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        (Decimal("3.5"), "must be integer, got 3.5"),
        (Decimal("1E+400"), "must be a 64-bit integer, from -9223372036854775808 to "),
        (Decimal("9223372036854775808.0"), "must be a 64-bit integer"),
    ],
)
def test_an_integer_setting_refuses_a_fraction_and_a_number_past_64_bits(
    given: Decimal, reason: str
) -> None:
    policy = policy_of("  n: {type: integer, default: 1}\n", "settings.n > 0")
    ((code, pointer, message),) = refusal(policy, {"n": given}, "python")
    assert (code, pointer) == ("setting_invalid", "/settings/n")
    assert message.startswith(f"setting 'n' {reason}"), message
