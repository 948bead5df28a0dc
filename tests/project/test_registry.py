"""What a worker serves with --watch (engine/project/registry.py): files saved mid-compile."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.project import registry
from engine.project.registry import compile_set
from tests import ROOT


def test_a_refusal_is_reported_under_the_stamp_of_the_save_it_belongs_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file saved again while its broken text compiles: the errors could be of either
    save, so nothing is refused yet; the next compile reports the file as it is, under
    its stamp (a refusal under another save's stamp was counted twice by the front)."""
    for folder in ("policies", "schemas"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    policies = tmp_path / "policies"
    path = policies / "cancellation-fees.yaml"
    first = compile_set(policies, None)
    assert first.statuses["cancellation-fees"].errors == ()

    broken = path.read_text(encoding="utf-8").replace(
        "cancellation.stage ==", "cancellation.stgae ==", 1
    )
    path.write_text(broken, encoding="utf-8")
    real = registry.compile_policy_file

    def saved_again_meanwhile(file: Path, rulebook: object) -> object:
        try:
            return real(file, rulebook)  # type: ignore[arg-type]
        finally:
            if file == path:  # the editor saves once more while this compile runs
                path.write_text(broken + "# saved again\n", encoding="utf-8")

    monkeypatch.setattr(registry, "compile_policy_file", saved_again_meanwhile)
    second = compile_set(policies, first)
    assert second.statuses["cancellation-fees"] is first.statuses["cancellation-fees"]

    monkeypatch.setattr(registry, "compile_policy_file", real)
    third = compile_set(policies, second)
    refused = third.statuses["cancellation-fees"]
    assert refused.errors and refused.policy is first.statuses["cancellation-fees"].policy
    stat = path.stat()
    assert refused.refused_stamp == (stat.st_mtime_ns, stat.st_size)
