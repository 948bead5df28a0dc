"""Policy ids that generated clients could not tell apart are refused (engine/project/names.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.core.errors import PolicyError
from engine.project.names import client_key
from engine.project.project import load_project
from engine.project.registry import compile_set
from tests import ROOT


def _project(tmp_path: Path) -> Path:
    for folder in ("policies", "schemas"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    return tmp_path / "policies"


def _twin(policies: Path, text: str, policy_id: str, twin: str) -> None:
    """A copy of a policy's text under another id (and file name)."""
    twinned = text.replace(f"\nid: {policy_id}\n", f"\nid: {twin}\n")
    assert twinned != text
    (policies / f"{twin}.yaml").write_text(twinned, encoding="utf-8")


def _fees(policies: Path) -> str:
    return (policies / "cancellation-fees.yaml").read_text(encoding="utf-8")


def test_ids_differing_only_in_hyphens_share_a_client_key_and_others_do_not() -> None:
    assert client_key("fees-2024") == client_key("fees2024") == "fees2024"
    assert client_key("order-holds") == client_key("orderholds")
    assert client_key("order-holds") != client_key("order-hold")
    assert client_key("a-b") != client_key("a-c")


def test_validation_refuses_the_second_id_at_its_id_line(tmp_path: Path) -> None:
    policies = _project(tmp_path)
    _twin(policies, _fees(policies), "cancellation-fees", "cancellationfees")
    with pytest.raises(PolicyError) as raised:
        load_project(policies)
    (clash,) = [d for d in raised.value.diagnostics if d.code == "client_name_clash"]
    assert clash.location is not None
    assert Path(clash.location.file).name == "cancellationfees.yaml"
    line = (policies / "cancellationfees.yaml").read_text(encoding="utf-8").splitlines()
    assert line[clash.location.line - 1] == "id: cancellationfees"
    assert clash.location.col == 5
    assert "'cancellation-fees'" in str(clash.message)


def test_ids_that_differ_otherwise_load_together(tmp_path: Path) -> None:
    policies = _project(tmp_path)
    _twin(policies, _fees(policies), "cancellation-fees", "cancellation-fees-b")
    project = load_project(policies)
    assert {"cancellation-fees", "cancellation-fees-b"} <= set(project.policies)


def test_the_service_keeps_serving_the_policy_it_served_and_refuses_the_newcomer(
    tmp_path: Path,
) -> None:
    """`cancellation-fees` sorts first, but `cancellationfees` was served before it."""
    policies = _project(tmp_path)
    fees = _fees(policies)
    (policies / "cancellation-fees.yaml").unlink()
    (policies / "cancellation-fees.tests.yaml").unlink()
    _twin(policies, fees, "cancellation-fees", "cancellationfees")
    first = compile_set(policies, None)
    assert first.statuses["cancellationfees"].policy is not None

    (policies / "cancellation-fees.yaml").write_text(fees, encoding="utf-8")
    second = compile_set(policies, first)
    newcomer = second.statuses["cancellation-fees"]
    assert newcomer.policy is None
    assert [e.code for e in newcomer.errors] == ["client_name_clash"]
    assert second.statuses["cancellationfees"].policy is not None
    assert second.statuses["cancellationfees"].errors == ()
