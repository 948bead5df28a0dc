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


def test_a_current_data_version_is_checked_again_when_its_entry_schema_tightens(
    tmp_path: Path,
) -> None:
    """A worker that already served the version kept serving it after a publication made
    it invalid, while a restarted worker served the file's default: the same request was
    answered both ways. Now every worker checks it against the schema it is served with."""
    for folder in ("policies", "schemas"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    loose = compile_set(tmp_path / "policies", None)
    schema = tmp_path / "schemas" / "data" / "blacklist.schema.json"
    schema.write_text(
        schema.read_text(encoding="utf-8").replace(
            '"required": ["id"]', '"required": ["id", "name"]'
        ),
        encoding="utf-8",
    )
    strict = compile_set(tmp_path / "policies", None)
    entries = [{"id": "BL-9", "name": "山田 太郎"}, {"id": "BL-10", "phone": "0120-000-000"}]
    current = {"blacklist": ("api-1", 0)}

    def snapshot(
        policy_set: registry.PolicySet, previous: registry.Snapshot | None
    ) -> registry.Snapshot:
        return registry.apply_data(policy_set, current, lambda n, v: entries, previous, 1, 1)

    first = snapshot(loose, None)
    assert first.datasets["blacklist"].version == "api-1"  # it fits the loose schema
    again = snapshot(loose, first)
    assert again.datasets["blacklist"] is first.datasets["blacklist"]  # reused as it was
    running = snapshot(strict, first)  # a worker that served it, after the publication
    restarted = snapshot(strict, None)  # a worker started after it
    for served in (running, restarted):
        assert served.datasets["blacklist"].version != "api-1"
        assert served.data_info["blacklist"].source == "file"
        assert served.data_info["blacklist"].unfit == "api-1"  # If-Match on the default
        assert served.data_errors["blacklist"]
    assert first.data_info["blacklist"].unfit is None
    assert running.datasets["blacklist"].version == restarted.datasets["blacklist"].version
