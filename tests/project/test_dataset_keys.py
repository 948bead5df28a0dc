"""A data set's `key` names one entry (in messages, in replacements through the API): two
entries with the same key value are refused, in a data file at its line and through the API
at `/entries/N/<key>`. A version stored before this rule keeps serving."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from engine.cli.render import diagnostic_text
from engine.compile.model import DatasetSpec
from engine.core.errors import PolicyError
from engine.project.project import load_dataset
from engine.project.registry import dataset_from_entries, validate_entries
from engine.source.yaml import MAX_FILE_BYTES
from tests.strategies import shipped_project

ENTRY = {"name": "山田 太郎", "postal_code": "160-0022", "phone": "03-3350-1234"}


def blacklist_spec() -> DatasetSpec:
    return shipped_project().policy("order-holds").datasets["blacklist"]


def test_two_entries_with_the_same_id_are_refused_with_both_indexes() -> None:
    entries = [{"id": "BL-1", **ENTRY}, {"id": "BL-2", **ENTRY}, {"id": "BL-1", **ENTRY}]
    with pytest.raises(PolicyError) as caught:
        validate_entries(blacklist_spec(), entries)
    [problem] = caught.value.diagnostics
    assert (problem.code, problem.pointer) == ("data_duplicate_key", "/entries/2/id")
    assert "entry 2 has the id 'BL-1' of entry 0" in problem.message


def test_a_duplicate_after_an_invalid_entry_is_named_by_its_own_index() -> None:
    """The duplicates were counted among the valid entries only: one place early per
    invalid entry before them ('entry 2' for the fourth)."""
    entries = [
        {"id": "BL-1", **ENTRY},
        {"id": "BL-2", **ENTRY, "phone": 1},
        {"id": "BL-3", **ENTRY},
        {"id": "BL-1", **ENTRY},
    ]
    with pytest.raises(PolicyError) as caught:
        validate_entries(blacklist_spec(), entries)
    found = {d.code: d for d in caught.value.diagnostics}
    assert found["data_duplicate_key"].pointer == "/entries/3/id"
    assert "entry 3 has the id 'BL-1' of entry 0" in found["data_duplicate_key"].message
    assert any(d.pointer == "/entries/1/phone" for d in caught.value.diagnostics)


def test_distinct_ids_and_the_same_other_fields_are_accepted() -> None:
    entries = [{"id": f"BL-{i}", **ENTRY} for i in range(3)]
    assert len(validate_entries(blacklist_spec(), entries).entries) == 3


def test_a_data_file_with_a_duplicate_id_is_refused_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "blacklist.yaml"
    lines = ["- {id: BL-1, name: 山田}", "- {id: BL-2, name: 佐藤}", "- {id: BL-1, name: 鈴木}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_dataset(blacklist_spec(), path)
    [problem] = caught.value.diagnostics
    assert problem.code == "data_duplicate_key" and problem.location is not None
    assert (problem.location.line, problem.pointer) == (3, "/2/id")


def test_a_version_stored_before_the_rule_keeps_serving() -> None:
    entries = [{"id": "BL-1", **ENTRY}, {"id": "BL-1", **ENTRY}]
    dataset = dataset_from_entries(blacklist_spec(), entries, "v-2026-01")
    assert len(dataset.entries) == 2
    with pytest.raises(PolicyError):
        dataset_from_entries(blacklist_spec(), entries, None)  # given now: checked


@pytest.mark.parametrize(
    ("make", "words"),
    [("folder", "is a folder, not a data file"), ("nothing", "file {path} not found")],
)
def test_a_source_that_is_no_file_says_whether_it_is_a_folder(
    tmp_path: Path, make: str, words: str
) -> None:
    """`source: data/` (a folder) was reported as a file not found, which it is not."""
    path = tmp_path / "data"
    if make == "folder":
        path.mkdir()
    with pytest.raises(PolicyError) as caught:
        load_dataset(blacklist_spec(), path)
    [problem] = caught.value.diagnostics
    assert problem.code == "data_source_missing"
    assert words.format(path=path) in problem.message


def test_a_data_file_past_the_size_limit_says_where_a_big_data_set_goes(tmp_path: Path) -> None:
    """It was refused with the message of a policy file ("split it"), and the CLI echoed its
    one line of 1.2 MB under the error."""
    path = tmp_path / "blacklist.json"
    entries = [{"id": f"BL-{i:06d}", **ENTRY} for i in range(12_000)]
    text = orjson.dumps(entries).decode()
    assert len(text.encode()) > MAX_FILE_BYTES
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_dataset(blacklist_spec(), path)
    [problem] = caught.value.diagnostics
    assert problem.code == "file_too_large" and problem.location is not None
    assert (problem.location.line, problem.location.col) == (1, 1)
    assert "a data file at most 1048576" in problem.message
    assert "PUT /v1/data/blacklist" in problem.message
    assert len(diagnostic_text(problem)) < 600


def test_a_data_file_at_the_size_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "blacklist.json"
    text = orjson.dumps([{"id": "BL-1", **ENTRY}]).decode()
    path.write_text(text + " " * (MAX_FILE_BYTES - len(text.encode())), encoding="utf-8")
    assert path.stat().st_size == MAX_FILE_BYTES
    assert len(load_dataset(blacklist_spec(), path).entries) == 1
