"""Every YAML test case of every shipped policy, as a pytest item.

The cases themselves (policies/*.tests.yaml) are what policy editors read
and run with `kimari test`; this module lets pytest run them too, one item
per case, and checks that no rule of a shipped policy is left without a case
that applies it.
"""

from __future__ import annotations

import pytest

from engine.project.project import case_files
from engine.testing.cases import Case, load_cases
from engine.testing.tester import run_case, run_tests
from tests import ROOT
from tests.strategies import shipped_project


def all_cases() -> list[Case]:
    project = shipped_project()
    return [case for path in case_files(ROOT / "policies") for case in load_cases(path, project)]


CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[f"{c.policy.id}: {c.name}" for c in CASES])
def test_policy_case(case: Case) -> None:
    result = run_case(case, shipped_project())
    assert result.passed, "\n".join([str(case.location), *result.failures])


def test_every_rule_of_every_shipped_policy_is_applied_by_some_case() -> None:
    report = run_tests([ROOT / "policies"], shipped_project())
    assert not report.problems
    assert report.uncovered_rules == {}
