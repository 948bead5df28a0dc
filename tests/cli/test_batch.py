"""`kimari batch`: many requests across processes, decisions in input order."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from engine.cli.batch import _decide_chunk
from engine.cli.main import main
from tests import FIXTURES, ROOT

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


def test_batch_refuses_a_line_nested_past_64_and_decides_the_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = '{"facts": {"order": ' + "[" * 63 + "]" * 63 + "}}"
    past_orjson = '{"facts": ' + "[" * 2_000 + "]" * 2_000 + "}"
    source = tmp_path / "requests.jsonl"
    source.write_text("\n".join([deep, request(10, "cod"), past_orjson]) + "\n")
    output = tmp_path / "decisions.jsonl"
    args = ["batch", "routing", str(source), "-o", str(output), "--policies", str(FIXTURE)]
    assert main([*args, "--workers", "1", "--no-progress"]) == 1
    first, second, third = (json.loads(line) for line in output.read_text().splitlines())
    assert first["errors"][0]["code"] == "json_too_deep"
    assert first["errors"][0]["pointer"] == "/facts/order" + "/0" * 62
    assert second["outcome"]["queue"] == "cod"
    assert third["line"] == 3 and third["errors"][0]["code"] == "json_too_deep"


def test_batch_refuses_an_unknown_policy_before_starting_workers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "requests.jsonl"
    source.write_text(request(1) + "\n")
    code = main(["batch", "routin", str(source), "--policies", str(FIXTURE)])
    assert code == 2
    assert "did you mean 'routing'?" in capsys.readouterr().err


@pytest.mark.parametrize("forked", [True, False])
def test_forked_and_spawned_workers_decide_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forked: bool
) -> None:
    """Forked workers inherit the compiled policy; spawned ones (another thread running, or
    no fork on this system) load it themselves: the same decisions either way."""
    from engine.cli import batch

    monkeypatch.setattr(batch, "_forkable", lambda: forked)
    source = tmp_path / "requests.jsonl"
    source.write_text("\n".join([request(150000), request(10, "cod"), request(10)]) + "\n")
    output = tmp_path / "decisions.jsonl"
    with output.open("wb") as sink, source.open("rb") as lines:
        summary = batch.run_batch(FIXTURE, "routing", lines, sink, workers=1)
    assert (summary.decided, summary.failed) == (3, 0)
    queues = [json.loads(line)["outcome"]["queue"] for line in output.read_text().splitlines()]
    assert queues == ["vip", "cod", "normal"]
    assert batch._worker == {}  # the parent keeps nothing once the pool is gone


def test_a_decimal_with_more_digits_than_a_float_holds_is_decided_as_written(
    tmp_path: Path,
) -> None:
    """24.9994999999999999999% of 100,000 is just under 24,999.5: -24,999 as written; a
    float (24.9995) would have booked -25,000."""
    from engine.cli import batch

    facts = (
        '{"uncollected": {"reward": 100000, "documents_guided_on": "2024-01-31", '
        '"booked_on": "2024-02-29", "assignee_share": 24.9994999999999999999, '
        '"manager_share": 40}}'
    )
    source = tmp_path / "requests.jsonl"
    source.write_text(f'{{"facts": {facts}, "at": "{AT}"}}\n')
    output = tmp_path / "decisions.jsonl"
    with output.open("wb") as sink, source.open("rb") as lines:
        summary = batch.run_batch(ROOT / "policies", "cancellation-fees", lines, sink, workers=1)
    assert (summary.decided, summary.failed) == (1, 0)
    (decision,) = [json.loads(line) for line in output.read_text().splitlines()]
    assert decision["outcome"]["assignee_negative"] == -24999


@pytest.mark.parametrize("at", ["bogus", "2024-10-01T10:00:00", "9999-12-31T23:59:59-14:00"])
def test_batch_refuses_a_bad_at_option_once_before_opening_the_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], at: str
) -> None:
    source = tmp_path / "requests.jsonl"
    source.write_text(request(10, "cod") + "\n")
    output = tmp_path / "decisions.jsonl"
    args = ["batch", "routing", str(source), "-o", str(output), "--policies", str(FIXTURE)]
    assert main([*args, "--at", at, "--workers", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("--at: ") == 1 and "/at" not in err
    assert not output.exists()
    assert main([*args, "--at", AT, "--workers", "1", "--no-progress"]) == 0


def _batch_lines(tmp_path: Path, lines: list[str], *options: str) -> list[dict[str, Any]]:
    source = tmp_path / "requests.jsonl"
    source.write_text("\n".join(lines) + "\n")
    output = tmp_path / "decisions.jsonl"
    args = ["batch", "routing", str(source), "-o", str(output), "--policies", str(FIXTURE)]
    main([*args, *options, "--workers", "1", "--no-progress"])
    return [json.loads(line) for line in output.read_text().splitlines()]


def _with(**keys: Any) -> str:
    facts = {"order": {"total": 10, "sequence": 1, "payment": {"method": "card"}}}
    return json.dumps({"facts": facts, **keys})


@pytest.mark.parametrize("settings", [[1], "x", 5, True])
def test_a_line_s_settings_that_are_no_object_are_its_error_and_the_others_are_decided(
    tmp_path: Path, settings: Any
) -> None:
    lines = [_with(at=AT), _with(at=AT, settings=settings), _with(at=AT, settings={})]
    first, second, third = _batch_lines(tmp_path, lines)
    assert first["outcome"]["queue"] == third["outcome"]["queue"] == "normal"
    assert second["line"] == 2
    assert [(e["code"], e["pointer"]) for e in second["errors"]] == [
        ("settings_invalid", "/settings")
    ]


def test_a_line_s_envelope_is_checked_as_the_service_checks_a_body(tmp_path: Path) -> None:
    lines = [_with(at=AT, extra=1), '{"at": "' + AT + '"}', "[1]", _with(at=AT, settings=None)]
    extra, no_facts, no_object, fine = _batch_lines(tmp_path, lines)
    assert [(e["code"], e["pointer"]) for e in extra["errors"]] == [("unknown_field", "/extra")]
    assert [(e["code"], e["pointer"], e["message"]) for e in no_facts["errors"]] == [
        ("missing_field", "/facts", "'facts' is required")
    ]
    assert [(e["code"], e["pointer"]) for e in no_object["errors"]] == [("request_invalid", "")]
    assert fine["outcome"]["queue"] == "normal"  # null settings: absent, as over HTTP


@pytest.mark.parametrize("at", ["", 0, False, [], {}, "tomorrow"])
def test_an_invalid_at_is_the_line_s_error_not_the_default(tmp_path: Path, at: Any) -> None:
    results = _batch_lines(tmp_path, [_with(at=at), _with()], "--at", AT)
    wrong, defaulted = results
    assert wrong["line"] == 1
    assert [(e["code"], e["pointer"]) for e in wrong["errors"]] == [("at_invalid", "/at")]
    assert defaulted["at"] == AT


def test_an_at_of_null_or_left_out_takes_the_default(tmp_path: Path) -> None:
    results = _batch_lines(tmp_path, [_with(at=None), _with()], "--at", AT)
    assert [r["at"] for r in results] == [AT, AT]


def test_a_batch_writes_its_file_whole_or_leaves_it_unwritten_with_what_was_decided(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run stopped half-way (Ctrl-C, a kill) left a file at the -o path that looked like
    a whole run's: it is now written as NAME.partial and renamed once every line is done."""
    source = tmp_path / "requests.jsonl"
    source.write_text(request(150000) + "\n" + request(10) + "\n")
    output = tmp_path / "decisions.jsonl"
    args = ["batch", "routing", str(source), "-o", str(output), "--policies", str(FIXTURE)]
    args += ["--workers", "1", "--no-progress"]
    assert main(args) == 0
    assert len(output.read_text().splitlines()) == 2
    assert not Path(f"{output}.partial").exists()

    import engine.cli.batch as batch_module

    def stopped(*_args: Any, **_kwargs: Any) -> Any:
        sink = _args[3]
        sink.write(b'{"decided": "the first line"}\n')
        raise KeyboardInterrupt

    output.unlink()
    monkeypatch.setattr(batch_module, "run_batch", stopped)
    assert main(args) == 2  # aborted
    err = capsys.readouterr().err
    assert not output.exists()  # nothing that looks like a whole run
    assert Path(f"{output}.partial").read_text() == '{"decided": "the first line"}\n'
    assert f"the decisions made are in {output}.partial" in err


def test_a_line_that_is_not_json_is_named_at_its_column_and_a_bad_byte_at_its_own(
    tmp_path: Path,
) -> None:
    """orjson puts a byte that is not UTF-8 at column 1 whatever its place, and says "line 1"
    of a line whose number the answer gives: the column of the byte, of the mistake."""
    source = tmp_path / "requests.jsonl"
    source.write_bytes(b'{"facts": {"x": "\xff"}}\n{"facts": {"a": tru}}\n' + _with().encode())
    output = tmp_path / "decisions.jsonl"
    args = ["batch", "routing", str(source), "-o", str(output), "--policies", str(FIXTURE)]
    main([*args, "--at", AT, "--workers", "1", "--no-progress"])
    byte, literal, fine = [json.loads(line) for line in output.read_text().splitlines()]
    assert byte["errors"] == [
        {"code": "json_invalid", "message": "invalid JSON: byte 0xff at column 18 is not UTF-8"}
    ]
    [mistake] = literal["errors"]
    assert mistake["message"].endswith("at column 17") and "line 1" not in mistake["message"]
    assert fine["outcome"]["queue"] == "normal"


def test_a_line_cut_short_is_named_at_its_end_not_at_column_1(tmp_path: Path) -> None:
    source = tmp_path / "requests.jsonl"
    source.write_bytes(b'{"facts": {}, "at": 1\n[1,\r\n')
    output = tmp_path / "decisions.jsonl"
    args = ["batch", "routing", str(source), "-o", str(output), "--policies", str(FIXTURE)]
    main([*args, "--at", AT, "--workers", "1", "--no-progress"])
    messages = [
        json.loads(line)["errors"][0]["message"] for line in output.read_text().splitlines()
    ]
    assert [m.rsplit(" ", 1)[-1] for m in messages] == ["22", "4"], messages


def _second_chunk_kills_its_worker(chunk: list[tuple[int, bytes]]) -> list[bytes]:
    from engine.cli import batch

    if chunk[0][0] == batch.CHUNK + 1:  # lines 257-512: kill -9, as the OOM killer does
        os.kill(os.getpid(), signal.SIGKILL)
    return _decide_chunk(chunk)


@pytest.mark.usefixtures("no_hang")
def test_a_worker_killed_mid_run_stops_the_run_with_every_line_before_its_chunk_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """multiprocessing.Pool replaces a killed worker but not its chunk, whose result never
    came: the run waited forever."""
    from engine.cli import batch

    monkeypatch.setattr(batch, "_forkable", lambda: True)  # the workers get the patch
    monkeypatch.setattr(batch, "_decide_chunk", _second_chunk_kills_its_worker)
    source = tmp_path / "requests.jsonl"
    source.write_text("".join(request(total) + "\n" for total in range(600)))
    output = tmp_path / "decisions.jsonl"
    args = ["batch", "routing", str(source), "-o", str(output), "--policies", str(FIXTURE)]
    assert main([*args, "--workers", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "worker_stopped: a worker process stopped (killed by SIGKILL): the lines before " in err
    assert "line 257 are decided in the output, none from it on" in err
    assert "`tail -n +257` of the input gives the lines still to decide" in err
    written = Path(f"{output}.partial").read_text().splitlines()
    assert [json.loads(line)["outcome"]["queue"] for line in written] == ["normal"] * 256
    assert not output.exists()


@pytest.mark.parametrize("number", ["1e9999999999999999999", "1e-9999999999999999999", "1e5000"])
def test_a_number_past_any_range_is_its_lines_error_and_the_others_are_decided(
    tmp_path: Path, number: str
) -> None:
    """Decimal's InvalidOperation (1e9999999999999999999) stopped the whole run with an
    internal error, nothing written; 1e5000 was 'not JSON', naming a Python type."""
    bad = '{"facts": {"order": {"total": NUMBER, "sequence": 1, "payment": {"method": "card"}}}}'
    source = tmp_path / "requests.jsonl"
    source.write_text(_with() + "\n" + bad.replace("NUMBER", number) + "\n" + _with() + "\n")
    output = tmp_path / "decisions.jsonl"
    args = ["batch", "routing", str(source), "-o", str(output), "--policies", str(FIXTURE)]
    assert main([*args, "--at", AT, "--workers", "1", "--no-progress"]) == 1
    first, refused, last = [json.loads(line) for line in output.read_text().splitlines()]
    assert first["outcome"]["queue"] == last["outcome"]["queue"] == "normal"
    [error] = refused["errors"]
    assert (error["code"], error["pointer"]) == ("out_of_range", "/facts/order/total")


def test_a_byte_order_mark_before_the_first_line_is_read_past_as_kimari_decide_does(
    tmp_path: Path,
) -> None:
    """A JSONL file saved by a Windows editor failed on its first line only."""
    source = tmp_path / "requests.jsonl"
    source.write_bytes(b"\xef\xbb\xbf" + (_with() + "\n" + _with() + "\n").encode())
    output = tmp_path / "decisions.jsonl"
    args = ["batch", "routing", str(source), "-o", str(output), "--policies", str(FIXTURE)]
    assert main([*args, "--at", AT, "--workers", "1", "--no-progress"]) == 0
    assert [json.loads(line)["outcome"]["queue"] for line in output.read_text().splitlines()] == [
        "normal",
        "normal",
    ]
