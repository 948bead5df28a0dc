"""The fee policy (RULES FE-1..FE-5) through the public Python API, with the seed's examples.

The YAML cases in policies/cancellation-fees.tests.yaml walk every rule; these tests pin
the worked examples of seed 004 and the boundaries the issue names (day 7 vs day 8,
69% vs 70%, one month vs two months) on the decision a service would receive.
"""

from __future__ import annotations

from typing import Any

import pytest

from engine import decide
from engine.compile.model import CompiledPolicy
from tests.strategies import shipped_project

AT = "2024-06-01T10:00:00+09:00"


@pytest.fixture(scope="module")
def fees() -> CompiledPolicy:
    return shipped_project().policy("cancellation-fees")


def outcome(policy: CompiledPolicy, facts: dict[str, Any], at: str = AT) -> dict[str, Any]:
    body = decide(policy, facts, at=at).to_dict()
    assert body["policy"]["revision"] == policy.revision
    return body["outcome"]  # type: ignore[no-any-return]


def credit(previous_fee: int, previous_reward: int = 150000, **extra: Any) -> dict[str, Any]:
    return {
        "credit": {
            "previous_reward": previous_reward,
            "previous_fee": previous_fee,
            "fee_paid_on": "2023-09-01",
            "same_customer": True,
            "same_kind": True,
            "new_reward": 130000,
            **extra,
        }
    }


def uncollected(booked_on: str) -> dict[str, Any]:
    return {
        "uncollected": {
            "reward": 100000,
            "documents_guided_on": "2024-01-31",
            "booked_on": booked_on,
            "assignee_share": 25,
            "manager_share": 40,
        }
    }


def test_fe4_seed_example_150000_reward_50000_fee_next_130000_bills_80000(
    fees: CompiledPolicy,
) -> None:
    """FE-4: the seed's credit example, in integer yen."""
    result = outcome(fees, credit(50000))
    assert result["credit_applies"] is True
    assert result["credit_amount"] == 50000
    assert result["billed"] == 80000
    assert isinstance(result["billed"], int)  # integer yen, never a float


@pytest.mark.parametrize(
    ("fee", "credited"), [(69000, True), (69999, True), (70000, False), (70001, False)]
)
def test_fe4_a_fee_of_69_percent_is_credited_and_70_percent_is_not(
    fees: CompiledPolicy, fee: int, credited: bool
) -> None:
    """FE-4: not credited when the fee taken was 70% of the reward or more."""
    result = outcome(fees, credit(fee, previous_reward=100000))
    assert result["credit_applies"] is credited
    assert result["billed"] == (130000 - fee if credited else 130000)


@pytest.mark.parametrize(
    ("fee", "credited"),
    [(69999999999999999, True), (70000000000000000, False), (70000000000000001, False)],
)
def test_fe4_a_share_a_hair_under_70_percent_is_credited_by_both_backends(
    fees: CompiledPolicy, fee: int, credited: bool
) -> None:
    """FE-4 at the line with a share finer than a double: 69.999999999999999% was 70.0 in
    durable_rules (not credited) and under 70 in the exact reference (credited). Both
    backends, and the explanation that checks one against the other, now agree."""
    facts = credit(fee, previous_reward=100000000000000000)
    for backend in ("durable", "python"):
        for explain in (False, True):
            found = decide(fees, facts, at=AT, backend=backend, explain=explain).outcome
            assert found["credit_applies"] is credited, (backend, explain)


def test_fe5_seed_example_one_times_is_minus_25000_and_minus_40000(fees: CompiledPolicy) -> None:
    """FE-5: at most one month after the guidance, minus 1x each share."""
    result = outcome(fees, uncollected("2024-02-29"))  # exactly one month after 1/31
    assert (result["negative_multiplier"], result["assignee_negative"]) == (1, -25000)
    assert result["manager_negative"] == -40000


def test_fe5_seed_example_five_times_is_minus_125000_and_minus_200000(
    fees: CompiledPolicy,
) -> None:
    """FE-5: two months or more after the guidance, minus 5x each share."""
    result = outcome(fees, uncollected("2024-03-31"))  # exactly two months after 1/31
    assert (result["negative_multiplier"], result["assignee_negative"]) == (5, -125000)
    assert result["manager_negative"] == -200000


@pytest.mark.parametrize("booked_on", ["2024-03-01", "2024-03-30"])
def test_fe5_between_one_and_two_months_is_needs_review_and_books_nothing(
    fees: CompiledPolicy, booked_on: str
) -> None:
    """FE-5: the seed is silent between one and two months."""
    result = outcome(fees, uncollected(booked_on))
    assert result["verdict"] == "needs_review"
    assert result["assignee_negative"] is None and result["manager_negative"] is None


@pytest.mark.parametrize(
    ("cancelled_on", "tier", "verdict"),
    [("2024-04-08", "none", "proposed"), ("2024-04-09", "by_workload", "needs_review")],
)
def test_fe2_no_fee_on_day_7_after_the_contract_start_but_not_on_day_8(
    fees: CompiledPolicy, cancelled_on: str, tier: str, verdict: str
) -> None:
    """FE-2: no fee only with both conditions: initial actions only, and day 7 at most."""
    facts = {
        "cancellation": {
            "reward": 150000,
            "stage": "initial_only",
            "contract_start": "2024-04-01",
            "cancelled_on": cancelled_on,
            "workload_percent": 30,
        }
    }
    result = outcome(fees, facts)
    assert (result["fee_tier"], result["verdict"]) == (tier, verdict)
    assert result["proposed_fee"] == (0 if tier == "none" else 45000)


@pytest.mark.parametrize(
    ("stage", "percent", "fee"),
    [("documents_filed", 100, 150001), ("application_in_progress", 50, 75001)],
)
def test_fe2_the_first_matching_tier_sets_the_fee_rounded_half_up_once(
    fees: CompiledPolicy, stage: str, percent: int, fee: int
) -> None:
    """FE-2: 100% once documents are complete and filed, 50% while the application is on."""
    facts = {"cancellation": {"reward": 150001, "stage": stage, "contract_start": "2024-04-01"}}
    result = outcome(fees, facts)
    assert (result["fee_percent"], result["proposed_fee"]) == (percent, fee)


def test_fe1_fe3_every_fee_proposal_says_that_keiki_decides_and_never_to_promise_free(
    fees: CompiledPolicy,
) -> None:
    """FE-1: 経企 decides, the policy proposes; FE-3: never present cancelling as free."""
    facts = {
        "cancellation": {
            "reward": 150000,
            "stage": "initial_only",
            "contract_start": "2024-05-30",
        }
    }
    decision = decide(fees, facts, at=AT)
    assert decision.outcome["decided_by"] == "経企"
    codes = {r["code"]: r for r in decision.to_dict()["reasons"]}
    assert "経企決裁" in codes["FEE_DECIDED_BY_PLANNING"]["message"]["ja"]
    assert "キャンセル無料であるかのような" in codes["FEE_NONE"]["action"]["ja"]


@pytest.mark.parametrize(
    ("cancelled_on", "fired", "tier"),
    [("2024-04-08", False, "none"), ("2024-04-09", True, "by_workload")],
)
def test_fe2_an_agreed_rate_is_reported_only_where_a_workload_fee_is_proposed(
    fees: CompiledPolicy, cancelled_on: str, fired: bool, tier: str
) -> None:
    """FE-2: the customer's agreement to "about 30%" is an agreement to a fee by workload;
    within 7 days with initial actions only there is no fee, and no contradictory reason."""
    facts = {
        "cancellation": {
            "reward": 150000,
            "stage": "initial_only",
            "contract_start": "2024-04-01",
            "cancelled_on": cancelled_on,
            "rate_confirmation": {"asked_percent": 30, "customer_agreed": True},
        }
    }
    decision = decide(fees, facts, at=AT).to_dict()
    codes = [r["code"] for r in decision["reasons"]]
    assert ("FEE_RATE_AGREED" in codes) is fired
    assert ("FEE_NONE" in codes) is not fired
    assert decision["outcome"]["fee_tier"] == tier
