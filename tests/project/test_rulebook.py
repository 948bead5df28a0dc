"""The rulebook index (policies/rulebook.tsv): a file that is not UTF-8 is refused at its
line and column like a policy file, never an internal error; an index that lists no IDs
(empty, or comments only) knows no ID, so every ref is unknown (docs/policy-language.md:
"an ID that is not in policies/rulebook.tsv is an error"), as the service's reloader has
it; a missing index is one error, and refs are then not checked against it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.core.errors import PolicyError
from engine.project.project import load_policy, load_project_partly, load_rulebook
from engine.project.registry import compile_set
from tests import FIXTURES

FIXTURE = FIXTURES / "project"
RULEBOOK = (FIXTURE / "rulebook.tsv").read_text(encoding="utf-8")
# every ref of the fixture's policies, by policy
REFS = {"exclusive": 3, "holds": 3, "routing": 3, "tiers": 3}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    copied = tmp_path / "project"
    shutil.copytree(FIXTURE, copied)
    return copied


def refs_in(policy: str) -> int:
    text = (FIXTURE / f"{policy}.yaml").read_text(encoding="utf-8")
    return sum(line.count("TS-") for line in text.splitlines() if "refs:" in line)


def test_the_fixture_policies_cite_the_refs_counted_here() -> None:
    assert {p: refs_in(p) for p in REFS} == REFS


def large_rulebook() -> str:
    """A rulebook of 2,000 IDs with Japanese titles (~90 KB)."""
    return "# 規則の索引\n" + "".join(f"TS-{i}\t規則 {i} の題名\n" for i in range(1, 2001))


def codes(problems: list) -> list[str]:  # type: ignore[type-arg]
    return [d.code for d in problems]


# -- not UTF-8 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "col"),
    [
        (RULEBOOK.replace("Routing (fixture)", "振り分け"), 2, 6),  # small: 6 lines
        (large_rulebook(), 1, 3),  # large: its first line is Japanese already
    ],
    ids=["small", "large"],
)
def test_a_rulebook_saved_as_shift_jis_is_refused_at_its_first_unreadable_byte(
    folder: Path, text: str, line: int, col: int
) -> None:
    path = folder / "rulebook.tsv"
    path.write_bytes(text.encode("shift_jis"))
    with pytest.raises(PolicyError) as caught:
        load_rulebook(path)
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.code == "file_not_utf8"
    assert diagnostic.location is not None
    assert (diagnostic.location.line, diagnostic.location.col) == (line, col)
    assert diagnostic.location.file.endswith("rulebook.tsv")
    assert "save the file as UTF-8" in diagnostic.message


def test_a_not_utf8_byte_far_down_a_large_rulebook_is_placed_on_its_line(folder: Path) -> None:
    raw = large_rulebook().encode("utf-8").replace(b"TS-1500\t", b"TS-1500\t\x93", 1)
    (folder / "rulebook.tsv").write_bytes(raw)
    with pytest.raises(PolicyError) as caught:
        load_rulebook(folder / "rulebook.tsv")
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.code == "file_not_utf8"
    assert diagnostic.location is not None
    assert (diagnostic.location.line, diagnostic.location.col) == (1501, 9)
    assert "0x93" in diagnostic.message


def test_validate_reports_a_not_utf8_rulebook_once_and_checks_no_ref_against_it(
    folder: Path,
) -> None:
    (folder / "rulebook.tsv").write_bytes(RULEBOOK.replace("Routing", "振り分け").encode("cp932"))
    project, problems = load_project_partly(folder)
    assert codes(problems) == ["file_not_utf8"]
    assert sorted(project.policies) == sorted(REFS)
    with pytest.raises(PolicyError) as caught:  # kimari batch: one policy
        load_policy(folder, "holds")
    assert codes(caught.value.diagnostics) == ["file_not_utf8"]


def test_a_rulebook_with_a_byte_order_mark_is_read_as_without(folder: Path) -> None:
    (folder / "rulebook.tsv").write_bytes(b"\xef\xbb\xbfTS-1\tA\nTS-3\tB\nTS-5\tC\n")
    assert load_rulebook(folder / "rulebook.tsv") == {"TS-1": "A", "TS-3": "B", "TS-5": "C"}


# -- empty, comments only, missing, normal ---------------------------------------------


@pytest.mark.parametrize("text", ["", "\n\n", "# no IDs yet\n", "# one\n\n  # two\n"])
def test_an_index_that_lists_no_ids_knows_none_so_every_ref_is_unknown(
    folder: Path, text: str
) -> None:
    (folder / "rulebook.tsv").write_text(text, encoding="utf-8")
    assert load_rulebook(folder / "rulebook.tsv") == {}
    project, problems = load_project_partly(folder)
    assert codes(problems) == ["unknown_ref"] * sum(REFS.values())
    assert "is not an ID of the rulebook index" in problems[0].message
    assert project.policies == {}  # each cites a ref
    with pytest.raises(PolicyError) as caught:
        load_policy(folder, "holds")
    assert codes(caught.value.diagnostics) == ["unknown_ref"] * REFS["holds"]
    served = compile_set(folder, None)  # the service's reloader: the same errors
    assert codes([d for s in served.statuses.values() for d in s.errors]) == codes(problems)


def test_a_missing_index_is_one_error_and_refs_are_not_checked_against_it(folder: Path) -> None:
    (folder / "rulebook.tsv").unlink()
    project, problems = load_project_partly(folder)
    assert codes(problems) == ["rulebook_missing"]
    assert problems[0].location is not None and problems[0].location.line == 1
    assert sorted(project.policies) == sorted(REFS)
    with pytest.raises(PolicyError) as caught:
        load_policy(folder, "holds")
    assert codes(caught.value.diagnostics) == ["rulebook_missing"]


def test_the_normal_index_knows_every_ref_of_the_fixture(folder: Path) -> None:
    assert len(load_rulebook(folder / "rulebook.tsv")) == 5
    project, problems = load_project_partly(folder)
    assert problems == []
    assert sorted(project.policies) == sorted(REFS)
    assert load_policy(folder, "holds").policy("holds").id == "holds"


def test_an_index_missing_one_cited_id_reports_that_ref_with_a_suggestion(folder: Path) -> None:
    (folder / "rulebook.tsv").write_text(RULEBOOK.replace("TS-5\t", "TS-6\t"), encoding="utf-8")
    _, problems = load_project_partly(folder)
    assert codes(problems) == ["unknown_ref"]
    assert problems[0].location is not None
    assert problems[0].location.file.endswith("holds.yaml")
