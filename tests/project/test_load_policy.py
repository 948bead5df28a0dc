"""`load_policy` (kimari batch): only `<id>.yaml` compiled, with its data; an id with no
such file is refused by name, as the whole project would refuse it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.core.errors import PolicyError, UsageError
from engine.project.project import load_policy, load_project
from tests import FIXTURES

FIXTURE = FIXTURES / "project"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    copied = tmp_path / "project"
    shutil.copytree(FIXTURE, copied)
    return copied


def test_only_the_named_policy_is_compiled_with_its_data(folder: Path) -> None:
    (folder / "broken.yaml").write_text("kimari: 1\nid: [\n")  # another policy, not compiled
    project = load_policy(folder, "holds")
    assert list(project.policies) == ["holds"]
    whole = load_project(FIXTURE)
    policy = project.policy("holds")
    assert policy.revision == whole.policy("holds").revision
    assert project.data_for(policy).keys() == whole.data_for(whole.policy("holds")).keys()
    assert project.data_for(policy)


@pytest.mark.parametrize("policy_id", ["routin", "../project/routing", ".routing"])
def test_an_unknown_or_outside_id_is_refused_by_name_as_the_project_would(
    folder: Path, policy_id: str
) -> None:
    project = load_policy(folder, policy_id)
    with pytest.raises(UsageError):
        project.policy(policy_id)


def test_a_broken_named_policy_is_reported_with_its_place(folder: Path) -> None:
    path = folder / "routing.yaml"
    path.write_text(path.read_text().replace("hit_policy: first", "hit_policy: firts"))
    with pytest.raises(PolicyError) as caught:
        load_policy(folder, "routing")
    assert any(
        str(d.location).startswith(str(path.name)) or "routing.yaml" in str(d.location)
        for d in caught.value.diagnostics
    )


def test_a_missing_data_set_of_the_named_policy_is_reported(folder: Path) -> None:
    (folder / "data" / "blacklist.yaml").unlink()
    with pytest.raises(PolicyError):
        load_policy(folder, "holds")
