"""The data files `kimari impact --data NAME=FILE` reads (YAML, JSON, JSON Lines, CSV): a
row of a CSV with a cell more or less than its header is refused at its line (a name
holding a comma moved the phone into the name and dropped it, silently); Excel's UTF-8
byte order mark is read past in CSV and JSON Lines; a file in another encoding says so;
the suffix's case does not matter."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.core.errors import UsageError
from engine.lifecycle.candidates import read_entries
from tests.strategies import shipped_project

BOM = b"\xef\xbb\xbf"


def spec():  # type: ignore[no-untyped-def]
    return shipped_project().policy("order-holds").datasets["blacklist"]


def entries(path: Path) -> list[object]:
    return read_entries(path, spec())[0]


def refusal(path: Path) -> str:
    with pytest.raises(UsageError) as caught:
        read_entries(path, spec())
    [problem] = caught.value.diagnostics
    where = f"{problem.location.line}: " if problem.location else ""
    return where + str(problem.message)


def test_a_csv_row_with_a_cell_too_many_or_too_few_is_refused_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "blacklist.csv"
    path.write_text(
        "id,name,phone\nBL-8,山田 太郎,03-1111-2222\nBL-9,ヤマダ, タロウ,090-1111-2222\n",
        encoding="utf-8",
    )
    said = refusal(path)
    assert said.startswith("3: ") and said.endswith(": 4 values, the header has 3"), said
    path.write_text("id,name,phone\nBL-8,山田 太郎\n", encoding="utf-8")
    assert refusal(path).startswith("2: ") and "2 values, the header has 3" in refusal(path)


def test_rows_as_wide_as_the_header_and_blank_lines_are_read(tmp_path: Path) -> None:
    path = tmp_path / "blacklist.CSV"  # the suffix in capitals (Windows)
    path.write_bytes(BOM + "id,name,phone\n\nBL-8,山田 太郎,\n".encode())
    assert entries(path) == [{"id": "BL-8", "name": "山田 太郎"}]  # an empty cell: absent


def test_json_lines_with_a_byte_order_mark_and_ndjson_are_read(tmp_path: Path) -> None:
    for name in ("blacklist.jsonl", "blacklist.ndjson"):
        path = tmp_path / name
        path.write_bytes(BOM + '{"id": "BL-8", "name": "山田"}\n\n{"id": "BL-9"}\n'.encode())
        assert entries(path) == [{"id": "BL-8", "name": "山田"}, {"id": "BL-9"}]


def test_a_csv_in_another_encoding_says_it_is_not_utf_8(tmp_path: Path) -> None:
    path = tmp_path / "blacklist.csv"
    path.write_bytes("id,name\nBL-8,山田\n".encode("shift_jis"))
    assert "not UTF-8" in refusal(path) and "save it as UTF-8" in refusal(path)


def test_a_folder_given_as_a_data_file_is_named_a_folder_and_a_missing_file_missing(
    tmp_path: Path,
) -> None:
    """A folder was "no such file", though it was right there."""
    folder = tmp_path / "blacklist"
    folder.mkdir()
    assert refusal(folder).endswith(": a folder, not a data file")
    assert refusal(tmp_path / "blacklist.csv").endswith(": no such file")
