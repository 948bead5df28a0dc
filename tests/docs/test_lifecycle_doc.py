"""docs/lifecycle.md's console sessions still run, each command exiting as the doc shows."""

from __future__ import annotations

from pathlib import Path

from tests.docs.lifecycle_session import DOC, read_blocks, run


def test_every_command_of_the_lifecycle_doc_runs_and_exits_as_shown(tmp_path: Path) -> None:
    documented = read_blocks(DOC.read_text(encoding="utf-8"))
    assert sum(len(block) for block in documented) >= 25
    results = run(documented, tmp_path)
    for wanted, got in zip(
        (s for b in documented for s in b), (s for b in results for s in b), strict=True
    ):
        assert got.code == wanted.code, f"$ {wanted.command}\n{got.output}"
        assert bool(got.output.strip()) == bool(wanted.output.strip()), (
            f"$ {wanted.command}\n{got.output}"
        )
