"""`kimari batch`: many requests across processes, decisions in input order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli.main import main
from tests import FIXTURES

FIXTURE = FIXTURES / "project"
AT = "2024-09-01T10:00:00+09:00"


def request(total: int, method: str = "card") -> str:
    return json.dumps(
        {
            "facts": {"order": {"total": total, "sequence": 1, "payment": {"method": method}}},
            "at": AT,
        }
    )


def test_batch_decides_every_line_in_order_and_reports_bad_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        request(150000),
        request(10, "cod"),
        "not json",
        '{"facts": {"order": {}}}',
        "",
        request(10),
    ]
    source = tmp_path / "requests.jsonl"
    source.write_text("\n".join(lines) + "\n")
    output = tmp_path / "decisions.jsonl"
    code = main(
        [
            "batch",
            "routing",
            str(source),
            "-o",
            str(output),
            "--policies",
            str(FIXTURE),
            "--workers",
            "2",
            "--no-progress",
        ]
    )
    assert code == 1  # some lines could not be decided
    results = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r.get("outcome", {}).get("queue") for r in results] == [
        "vip",
        "cod",
        None,
        None,
        "normal",
    ]
    assert results[2]["line"] == 3 and results[2]["errors"][0]["code"] == "json_invalid"
    assert results[3]["line"] == 4
    assert {e["pointer"] for e in results[3]["errors"]} >= {"/facts/order/total"}
    assert "3 decided, 2 failed" in capsys.readouterr().err


def test_batch_refuses_an_unknown_policy_before_starting_workers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "requests.jsonl"
    source.write_text(request(1) + "\n")
    code = main(["batch", "routin", str(source), "--policies", str(FIXTURE)])
    assert code == 2
    assert "did you mean 'routing'?" in capsys.readouterr().err
