"""docs/lifecycle.md's console sessions still run, each command exiting as the doc shows, and
only the commands its story means to fail do: a walkthrough regenerated after a policy
change once showed the intended change failing its tests and every later step failing with
it (tracebacks of the HTTP section included), and exit codes alone still matched."""

from __future__ import annotations

from pathlib import Path

from tests.docs.lifecycle_session import DOC, read_blocks, run

# what the story shows refused: the impact gate, the boundary edit its tests refuse, and the
# author approving their own revision
MEANT_TO_FAIL = (
    "--max-changed 0",
    '-m "tidy the no-fee rule"',
    "approve cancellation-fees@2 --as alice",
)


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


def test_the_documented_session_fails_only_where_the_story_says() -> None:
    documented = [s for b in read_blocks(DOC.read_text(encoding="utf-8")) for s in b]
    failing = [s.command for s in documented if s.code != 0]
    assert [any(m in c for m in MEANT_TO_FAIL) for c in failing] == [True] * len(failing), failing
    assert len(failing) >= len(MEANT_TO_FAIL)
    assert not [s.command for s in documented if "Traceback" in s.output]
