"""`kimari validate` places a problem of a JSON schema file (facts or data set) at its line
in that file, as it does for YAML: the editor's way from the message to the fix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.cli.main import main
from tests import ROOT


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for folder in ("policies", "schemas"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    return tmp_path


def edit(path: Path, old: str, new: str) -> int:
    """Replace the first `old` in the file; return the 1-based line it is on."""
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def validate(capsys: pytest.CaptureFixture[str], project: Path) -> tuple[int, list[dict]]:
    code = main(["validate", "--format", "json", str(project / "policies")])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "internal error" not in err, err
    return code, json.loads(out)["errors"]


def test_a_facts_schema_problem_is_reported_at_its_line_and_column_with_its_pointer(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schema = project / "schemas" / "cancellation-fees.facts.schema.json"
    text = schema.read_text(encoding="utf-8")
    line = edit(schema, '"reward": {"type": "integer"', '"reward": {"type": "integr"')
    col = text.splitlines()[line - 1].index('"integer"') + 1
    code, errors = validate(capsys, project)
    assert code == 2
    mine = [e for e in errors if e["location"]["file"].endswith(schema.name)]
    assert mine == [
        {
            "code": "invalid_schema",
            "message": mine[0]["message"],
            "location": {"file": mine[0]["location"]["file"], "line": line, "col": col},
            "pointer": "/properties/cancellation/properties/reward/type",
            "hint": "did you mean 'integer'?",
        }
    ]
    assert mine[0]["message"].startswith('"integr" is not a type')
    # and the policy that uses it says so at its `facts:` line
    assert any(e["code"] == "schema_file_invalid" for e in errors)


def test_a_data_set_schema_problem_is_reported_at_the_misspelt_keyword(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schema = project / "schemas" / "data" / "blacklist.schema.json"
    text = schema.read_text(encoding="utf-8")
    line = edit(schema, '"minLength"', '"minLenght"')
    col = text.splitlines()[line - 1].index('"minLength"') + 1
    code, errors = validate(capsys, project)
    mine = [e for e in errors if e["location"]["file"].endswith("blacklist.schema.json")]
    assert code == 2 and len(mine) == 1
    assert (mine[0]["location"]["line"], mine[0]["location"]["col"]) == (line, col)
    assert mine[0]["message"] == "keyword 'minLenght' is not supported"
    assert mine[0]["hint"] == "did you mean 'minLength'?"


def test_the_shipped_schemas_have_no_problem(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(ROOT / "policies")]) == 0
    assert "0 errors" in capsys.readouterr().out


def test_a_key_held_twice_in_a_schema_file_is_reported_at_the_second(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """orjson keeps the last of the two: the schema read would not be the one written."""
    schema = project / "schemas" / "cancellation-fees.facts.schema.json"
    text = schema.read_text(encoding="utf-8")
    old = '"reward": {"type": "integer", "minimum": 0,'
    line = edit(schema, old, '"reward": {"type": "integer", "minimum": 0, "type": "string",')
    col = text.splitlines()[line - 1].index(old) + len(old) + 2
    code, errors = validate(capsys, project)
    mine = [e for e in errors if e["location"]["file"].endswith(schema.name)]
    assert code == 2 and [e["code"] for e in mine] == ["duplicate_key"]
    assert (mine[0]["location"]["line"], mine[0]["location"]["col"]) == (line, col)
    assert mine[0]["pointer"] == "/properties/cancellation/properties/reward/type"


@pytest.mark.parametrize(
    ("folder", "name"),
    [("schemas", "cancellation-fees.facts.schema.json"), ("schemas/data", "blacklist.schema.json")],
)
def test_a_schema_file_that_is_not_utf8_is_refused_at_its_first_bad_byte(
    project: Path, capsys: pytest.CaptureFixture[str], folder: str, name: str
) -> None:
    """As a policy file is (file_not_utf8, the byte's line:col), not with the JSON parser's
    complaint about the codec at 1:1."""
    schema = project / folder / name
    lines = schema.read_text(encoding="utf-8").split("\n")
    lines[2] = lines[2][:4] + "\x00" + lines[2][4:]  # a placeholder for a Shift_JIS byte
    schema.write_bytes("\n".join(lines).encode("utf-8").replace(b"\x00", b"\x82\xa0"))
    code, errors = validate(capsys, project)
    assert code == 2
    mine = [e for e in errors if e["location"]["file"].endswith(name)]
    assert [(e["code"], e["location"]["line"], e["location"]["col"]) for e in mine] == [
        ("file_not_utf8", 3, 5)
    ]
    assert "byte 0x82" in mine[0]["message"]
