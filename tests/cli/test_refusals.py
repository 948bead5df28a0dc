"""Caller mistakes the CLI refuses with the place named, never a traceback, never lost data:
an output that is the input, integers too long to read, a store that is no SQLite database
or whose path is mistyped, --limit out of range, command-line text that is not UTF-8, a key
held twice, a decision_id the service refuses, a flow policy given to `decide`/`batch`, NaN,
Infinity and lone surrogates, which Python's json reads and JSON (and the service) has not."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.cli.main import LOG_LIMIT, main
from tests import FIXTURES, ROOT

FIXTURE = FIXTURES / "project"
SHIPPED = str(ROOT / "policies")
AT = "2024-09-01T10:00:00+09:00"
FACTS = {"order": {"total": 150000, "sequence": 1, "payment": {"method": "card"}}}
EVENT = str(ROOT / "examples" / "claim-status.event.json")
# EX-2: an estimate is claimed only once made 対象外 with its reason (this event, first)
EXCLUDE = str(ROOT / "examples" / "claim-status.exclude.json")
DEALER = ("--actor", "dealer-7", "--role", "販売店")
NOT_UTF8 = "\udcff"  # what Python makes of the byte 0xff on the command line ($'\xff')


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "internal error" not in err and "Traceback" not in err, err
    return code, out, err


def request(total: int = 150000, **extra: object) -> str:
    facts = {"order": {"total": total, "sequence": 1, "payment": {"method": "card"}}}
    return json.dumps({"facts": facts, "at": AT, **extra})


def batch(source: str, *extra: str) -> list[str]:
    return ["batch", "routing", source, "--policies", str(FIXTURE), "--workers", "1",
            "--no-progress", *extra]  # fmt: skip


@pytest.fixture()
def store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """A store holding one flow entity, made 対象外 and claimed (and an empty decision log)."""
    path = str(tmp_path / "store.sqlite3")
    for event in (EXCLUDE, EVENT):
        code, _, err = run(capsys, "flow", "claim-status", "EST-1", event, "--store", path,
                           "--policies", SHIPPED, "--at", AT, *DEALER)  # fmt: skip
        assert code == 0, err
    return path


# -- 1. the output of `kimari batch` is never its input ----------------------------------------


@pytest.mark.parametrize("how", ["same name", "symbolic link"])
def test_batch_refuses_an_output_that_is_its_input_and_leaves_the_input_as_it_was(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, how: str
) -> None:
    source = tmp_path / "q.jsonl"
    source.write_text(request() + "\n" + request(10) + "\n")
    before = source.read_bytes()
    output = source
    if how == "symbolic link":
        output = tmp_path / "link.jsonl"
        output.symlink_to(source)
    code, _, err = run(capsys, *batch(str(source), "-o", str(output)))
    assert code == 2
    assert f"usage: the output {output} is the input {source}: write the decisions" in err
    assert source.read_bytes() == before


def test_batch_writes_to_another_file_or_to_stdout_as_before(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "q.jsonl"
    source.write_text(request() + "\n")
    output = tmp_path / "decisions.jsonl"
    output.write_text("old\n")  # an existing file that is not the input: overwritten
    code, _, _ = run(capsys, *batch(str(source), "-o", str(output)))
    assert code == 0
    assert json.loads(output.read_text())["outcome"]["queue"] == "vip"
    code, out, _ = run(capsys, *batch(str(source)))  # -o - (stdout)
    assert code == 0 and json.loads(out)["outcome"]["queue"] == "vip"


def test_batch_refuses_stdin_redirected_from_its_output_file_and_reads_a_pipe(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "q.jsonl"
    source.write_text(request() + "\n")
    before = source.read_bytes()
    with source.open("rb") as redirected:  # kimari batch routing - -o q.jsonl < q.jsonl
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(redirected))
        code, _, err = run(capsys, *batch("-", "-o", str(source)))
    assert code == 2 and f"the output {source} is the input <stdin>" in err
    assert source.read_bytes() == before
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(before)))  # a pipe
    output = tmp_path / "decisions.jsonl"
    code, _, _ = run(capsys, *batch("-", "-o", str(output)))
    assert code == 0 and json.loads(output.read_text())["outcome"]["queue"] == "vip"


# -- 2. integers too long for Python to read ---------------------------------------------------


def digits(count: int) -> str:
    return "1" * count


LIMIT = 4300  # CPython's default; a Python run with another (or none) is set to it here


@pytest.fixture()
def int_limit() -> Iterator[None]:
    """Python's int-digit limit at its default, whatever this interpreter was started with
    (PYTHONINTMAXSTRDIGITS=0 lifts it): the tests then run everywhere, never skipped."""
    before = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(LIMIT)
    try:
        yield
    finally:
        sys.set_int_max_str_digits(before)


@pytest.mark.usefixtures("int_limit")
def test_decide_refuses_an_integer_too_long_to_read_with_its_pointer(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "big.json"
    facts = json.dumps(FACTS)
    path.write_text(facts.replace("150000", digits(LIMIT + 1)))
    code, _, err = run(capsys, "decide", "routing", str(path), "--policies", str(FIXTURE))
    assert code == 1
    rule = "out_of_range: must be a 64-bit integer, from -9223372036854775808 to "
    assert f"/facts/order/total: {rule}9223372036854775807; got an integer of 4301 digits" in err
    # at the limit it is read, and the facts' schema refuses it in the same words
    path.write_text(facts.replace("150000", digits(LIMIT)))
    code, _, err = run(capsys, "decide", "routing", str(path), "--policies", str(FIXTURE))
    assert code == 1
    assert f"/facts/order/total: {rule}9223372036854775807; got an integer of 4300 digits" in err


@pytest.mark.usefixtures("int_limit")
def test_settings_and_a_flow_event_refuse_an_integer_too_long_to_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps(FACTS))
    decide = ("decide", "routing", str(facts), "--policies", str(FIXTURE), "--at", AT)
    code, _, err = run(capsys, *decide, "--settings", f'{{"limit": [1, {digits(LIMIT + 1)}]}}')
    assert code == 2 and "/settings/limit/1: out_of_range: must be a 64-bit integer" in err
    code, _, err = run(capsys, *decide, "--settings", f'{{"limit": {digits(LIMIT)}}}')
    assert code != 0 and "/settings/limit/1" not in err  # read; refused as a setting
    event = tmp_path / "event.json"
    event.write_text(f'{{"type": "claim", "detail": {digits(LIMIT + 1)}}}')
    code, _, err = run(capsys, "flow", "claim-status", "EST-1", str(event), "--store",
                       str(tmp_path / "s.sqlite3"), "--policies", SHIPPED, *DEALER)  # fmt: skip
    assert code == 1 and "/event/detail: out_of_range: must be a 64-bit integer" in err


# -- 3. a store that is not an SQLite database ------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["log"],
        ["history", "claim-status", "EST-1", "--policies", SHIPPED],
        ["flow", "claim-status", "EST-1", EVENT, "--policies", SHIPPED, *DEALER],
        ["diff", "cancellation-fees", "--policies", SHIPPED],
        ["revisions", "cancellation-fees"],
    ],
)
def test_a_store_that_is_not_an_sqlite_database_is_a_usage_error_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str]
) -> None:
    path = tmp_path / "order-holds.json"
    path.write_text(json.dumps(FACTS))
    before = path.read_bytes()
    code, _, err = run(capsys, *command, "--store", str(path))
    assert code == 2
    assert f"store_invalid: {path} is not an SQLite database" in err
    assert path.read_bytes() == before
    code, _, err = run(capsys, *command, "--store", str(tmp_path))  # a folder is none either
    assert code == 2 and str(tmp_path) in err  # store_invalid, store_missing or click's own


def test_a_store_that_is_an_sqlite_database_is_read(
    capsys: pytest.CaptureFixture[str], store: str
) -> None:
    code, out, _ = run(capsys, "history", "claim-status", "EST-1", "--store", store,
                       "--policies", SHIPPED)  # fmt: skip
    assert code == 0 and "EST-1" in out
    code, _, err = run(capsys, "log", "--store", store)
    assert code == 0 and "no decisions" in err


def test_a_damaged_store_is_named_and_said_to_be_damaged_not_an_internal_error(
    capsys: pytest.CaptureFixture[str], store: str
) -> None:
    with Path(store).open("r+b") as file:  # a good header, then garbage over the schema
        file.seek(120)
        file.write(b"\xde\xad\xbe\xef" * 100)
    for command in (["log"], ["history", "claim-status", "EST-1", "--policies", SHIPPED]):
        code, _, err = run(capsys, *command, "--store", store)
        assert code == 2
        assert f"store_damaged: the store {store} is damaged (SQLite: " in err
        assert "restore it from a backup" in err


# -- 4. kimari log --limit ---------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["0", "-1", str(LOG_LIMIT + 1), "99999999999999999999999"])
def test_log_refuses_a_limit_out_of_range(
    capsys: pytest.CaptureFixture[str], store: str, limit: str
) -> None:
    code, _, err = run(capsys, "log", "--store", store, "--limit", limit)
    assert code == 2 and "Invalid value for '--limit'" in err


@pytest.mark.parametrize("limit", ["1", str(LOG_LIMIT)])
def test_log_takes_a_limit_in_range(
    capsys: pytest.CaptureFixture[str], store: str, limit: str
) -> None:
    code, _, err = run(capsys, "log", "--store", store, "--limit", limit)
    assert code == 0 and "no decisions" in err


# -- 5. command-line text that is not UTF-8 ----------------------------------------------------


@pytest.mark.parametrize(
    ("option", "command"),
    [
        ("--policy", ["log", "--policy", NOT_UTF8]),
        ("--rule", ["log", "--rule", NOT_UTF8]),
        ("--id", ["log", "--id", NOT_UTF8]),
        ("POLICY", ["revisions", NOT_UTF8]),
        ("POLICY", ["decide", NOT_UTF8, "facts.json"]),
        ("--as", ["draft", "cancellation-fees", "--as", NOT_UTF8]),
        ("--message", ["draft", "cancellation-fees", "-m", NOT_UTF8]),
        ("--message", ["reject", "cancellation-fees@2", "-m", NOT_UTF8]),
        ("POLICY@N", ["approve", f"{NOT_UTF8}@2"]),
        ("--at", ["decide", "routing", "facts.json", "--at", NOT_UTF8]),
        ("--role", ["flow", "claim-status", "E-1", EVENT, "--actor", "a", "--role", NOT_UTF8]),
        ("--store", ["history", "claim-status", "E-1", "--store", f"x{NOT_UTF8}.sqlite3"]),
    ],
)
def test_text_that_is_not_utf_8_is_a_usage_error_naming_the_option(
    capsys: pytest.CaptureFixture[str], option: str, command: list[str]
) -> None:
    code, _, err = run(capsys, *command)
    assert code == 2
    assert f"usage: {option} is not UTF-8 text: " in err and "\\xff" in err


def test_text_in_utf_8_of_any_script_is_taken(
    capsys: pytest.CaptureFixture[str], store: str
) -> None:
    for value in ("é", "販売店", "\U0001f600"):
        code, _, err = run(capsys, "log", "--store", store, "--policy", value, "--rule", value)
        assert code == 0 and "no decisions" in err


def test_a_byte_is_shown_as_it_was_given() -> None:
    from engine.cli.inputs import check_utf8, shown_bytes

    assert shown_bytes("a\udcffb\udc80") == "a\\xffb\\x80"
    assert shown_bytes("\ud800") == "\\ud800"  # no byte gives it: shown as the code point
    assert check_utf8("販売店", "--role") == "販売店"


# -- 6. a key held twice, and a decision_id the service refuses -------------------------------


def test_decide_refuses_facts_holding_a_key_twice_with_its_pointer(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "facts.json"
    decide = ("decide", "routing", str(path), "--policies", str(FIXTURE), "--at", AT)
    path.write_text('{"order": {"total": 150000, "sequence": 1, "total": 1, '
                    '"payment": {"method": "card"}}}')  # fmt: skip
    code, _, err = run(capsys, *decide)
    assert code == 1
    assert (
        "/facts/order/total: duplicate_key: duplicate key 'total'; a JSON parser would "
        "silently keep only the last one" in err
    )
    # the same key in two objects is no duplicate
    path.write_text(
        json.dumps({"order": {**FACTS["order"], "payment": {"total": 1, "method": "card"}}})
    )
    _, _, err = run(capsys, *decide)
    assert "duplicate_key" not in err  # read: judged by the schema alone
    path.write_text(json.dumps(FACTS))
    code, out, _ = run(capsys, *decide)
    assert code == 0 and "queue: vip" in out


def test_settings_and_a_flow_event_holding_a_key_twice_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps(FACTS))
    decide = ("decide", "routing", str(facts), "--policies", str(FIXTURE), "--at", AT)
    code, _, err = run(capsys, *decide, "--settings", '{"a": 1, "a": 2}')
    assert code == 2 and "/settings/a: duplicate_key: duplicate key 'a'" in err
    code, _, err = run(capsys, *decide, "--settings", '{"a": {"b": 1}, "c": {"b": 1}}')
    assert "duplicate_key" not in err
    event = tmp_path / "event.json"
    event.write_text('{"type": "claim", "type": "start_review"}')
    flow = ("flow", "claim-status", "EST-1", str(event), "--store", str(tmp_path / "s.sqlite3"),
            "--policies", SHIPPED, "--at", AT, *DEALER)  # fmt: skip
    code, _, err = run(capsys, *flow)
    assert code == 1 and "/event/type: duplicate_key: duplicate key 'type'" in err
    event.write_text('{"type": "exclude", "exclusion_reason": "重複"}')
    assert run(capsys, *flow)[0] == 0
    event.write_text('{"type": "claim"}')
    assert run(capsys, *flow)[0] == 0


def test_batch_refuses_a_line_holding_a_key_twice_and_decides_the_others(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lines = [
        request().replace('"sequence": 1', '"sequence": 1, "sequence": 2'),
        request(10).replace('"at":', '"at" :'),  # a spaced colon: the exact check, no duplicate
        request(10).replace('"card"', '"\\u0022card"'),  # an escaped quote: the exact check
        request(10).replace('"at":', '"at": "x", "at":'),  # on the request's own object
        request(10**30).replace('"at":', '"at": "x", "at":'),  # an exact (long) parse
    ]
    source = tmp_path / "q.jsonl"
    source.write_text("\n".join(lines) + "\n")
    output = tmp_path / "decisions.jsonl"
    assert run(capsys, *batch(str(source), "-o", str(output)))[0] == 1
    results = [json.loads(line) for line in output.read_text().splitlines()]
    assert results[0]["errors"] == [
        {
            "code": "duplicate_key",
            "message": "duplicate key 'sequence'; a JSON parser would silently keep only the "
            "last one",
            "pointer": "/facts/order/sequence",
        }
    ]
    assert results[1]["outcome"]["queue"] == "normal"
    assert "errors" not in results[2] or results[2]["errors"][0]["code"] != "duplicate_key"
    assert results[3]["errors"][0]["pointer"] == "/at"
    assert results[4]["errors"][0]["code"] == "duplicate_key"


@pytest.mark.parametrize(
    ("decision_id", "refused"),
    [("x y", True), ("", True), ("a" * 129, True), ("-a", True), ("é", True), (1, True),
     ("a" * 128, False), ("ok-1", False), ("A.b_c:d-9", False), (None, False)],
)  # fmt: skip
def test_batch_refuses_a_decision_id_the_service_refuses(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, decision_id: object, refused: bool
) -> None:
    source = tmp_path / "q.jsonl"
    source.write_text(request(decision_id=decision_id) + "\n")
    output = tmp_path / "decisions.jsonl"
    code, _, _ = run(capsys, *batch(str(source), "-o", str(output)))
    (result,) = [json.loads(line) for line in output.read_text().splitlines()]
    if refused:
        assert code == 1
        assert result["errors"] == [
            {
                "code": "decision_id_invalid",
                "message": (
                    "'decision_id' must be 1-128 letters, digits or . _ : -, the first a "
                    "letter or digit"
                ),
                "pointer": "/decision_id",
            }
        ]
    else:
        assert code == 0 and result["outcome"]["queue"] == "vip"
        if decision_id is not None:
            assert result["decision_id"] == decision_id


# -- 7. a flow policy is not decided -----------------------------------------------------------


def test_decide_and_batch_refuse_a_flow_policy_pointing_to_kimari_flow(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    wanted = (
        "not_a_decision_policy: policy 'claim-status' is a flow, not decided here "
        "(send its events with `kimari flow`)"
    )
    code, out, err = run(capsys, "decide", "claim-status", EVENT, "--policies", SHIPPED)
    assert code == 2 and wanted in err and not out
    source = tmp_path / "q.jsonl"
    source.write_text(json.dumps({"facts": {}}) + "\n")
    output = tmp_path / "decisions.jsonl"
    code, _, err = run(capsys, "batch", "claim-status", str(source), "-o", str(output),
                       "--policies", SHIPPED, "--workers", "1")  # fmt: skip
    assert code == 2 and wanted in err
    facts = ROOT / "examples" / "order-holds.json"  # a decision policy: decided
    code, out, _ = run(capsys, "decide", "order-holds", str(facts), "--policies", SHIPPED,
                       "--at", "2024-10-01T10:00:00+09:00")  # fmt: skip
    assert code == 0 and out


# -- 8. a mistyped store path ------------------------------------------------------------------


def test_history_of_a_store_that_is_not_there_is_store_missing_and_creates_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, store: str
) -> None:
    for missing in (tmp_path / "typo" / "x.sqlite3", tmp_path / "x.sqlite3"):
        code, _, err = run(capsys, "history", "claim-status", "EST-1", "--store", str(missing),
                           "--policies", SHIPPED)  # fmt: skip
        assert code == 2 and f"store_missing: no store at {missing}" in err
        assert not missing.exists() and not (tmp_path / "typo").exists()
    code, out, _ = run(capsys, "history", "claim-status", "EST-1", "--store", store,
                       "--policies", SHIPPED)  # fmt: skip
    assert code == 0 and "EST-1" in out


def test_flow_refuses_a_store_in_a_folder_that_is_not_there_and_starts_one_in_a_folder_that_is(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    typo = tmp_path / "typo" / "x.sqlite3"
    flow = ("flow", "claim-status", "EST-1", EVENT, "--policies", SHIPPED, "--at", AT, *DEALER)
    code, _, err = run(capsys, *flow, "--store", str(typo))
    assert code == 2
    assert f"store_missing: no store at {typo} (the folder {typo.parent} does not exist" in err
    assert not typo.parent.exists()
    new = tmp_path / "new.sqlite3"
    exclude = ("flow", "claim-status", "EST-1", EXCLUDE, "--policies", SHIPPED, "--at", AT,
               *DEALER)  # fmt: skip
    code, _, _ = run(capsys, *exclude, "--store", str(new))
    assert code == 0 and new.is_file()
    code, _, _ = run(capsys, *flow, "--store", str(new))
    assert code == 0


def test_the_default_store_is_created_with_its_folder_by_flow_and_only_read_by_history(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the README runs them on a fresh checkout: var/kimari.sqlite3, as `kimari serve`."""
    monkeypatch.chdir(tmp_path)
    history = ("history", "claim-status", "EST-1", "--policies", SHIPPED)
    code, _, err = run(capsys, *history)
    assert code == 2 and "store_missing: no store at var/kimari.sqlite3" in err
    assert not (tmp_path / "var").exists()
    code, _, _ = run(capsys, "flow", "claim-status", "EST-1", EXCLUDE, "--policies", SHIPPED,
                     *DEALER)  # fmt: skip
    assert code == 0 and (tmp_path / "var" / "kimari.sqlite3").is_file()
    code, _, _ = run(capsys, "flow", "claim-status", "EST-1", EVENT, "--policies", SHIPPED,
                     *DEALER)  # fmt: skip
    assert code == 0
    assert run(capsys, *history)[0] == 0


# -- 7. what Python's json reads and JSON has not: NaN, Infinity, a lone surrogate -------------


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_settings_refuse_nan_and_infinity_as_json_has_none(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, constant: str
) -> None:
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps(FACTS))
    decide = ("decide", "routing", str(facts), "--policies", str(FIXTURE), "--at", AT)
    code, _, err = run(capsys, *decide, "--settings", f'{{"rate": {constant}}}')
    assert code == 2
    assert f"usage: --settings is not valid JSON: {constant} is not a JSON number" in err
    # the same words in a text are text; a finite number is read (and found unknown here)
    code, _, err = run(capsys, *decide, "--settings", '{"rate": 1.5, "note": "NaN -Infinity"}')
    assert code == 2 and "not valid JSON" not in err and "no setting 'rate'" in err


def test_facts_refuse_nan_and_infinity_at_their_line_and_column(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "facts.json"
    decide = ("decide", "routing", str(path), "--policies", str(FIXTURE), "--at", AT)
    path.write_text('{"order": {"total": 150000, "sequence": 1,\n  "rate": NaN}}')
    code, _, err = run(capsys, *decide)
    assert code == 1
    assert f"json_invalid: {path}:2:11: invalid JSON: NaN is not a JSON number" in err


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ('"\\ud800"', 25),  # a high surrogate alone
        ('"ab\\udc00"', 27),  # a low one alone
        ('"\\ud800\\ud800\\udc00"', 25),  # a high one, then a pair
        ('"\\ud800x\\udc00"', 25),  # the two halves apart
    ],
)
def test_facts_refuse_a_lone_surrogate_at_its_line_and_column(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, column: int
) -> None:
    path = tmp_path / "facts.json"
    decide = ("decide", "routing", str(path), "--policies", str(FIXTURE), "--at", AT)
    order = json.dumps(FACTS["order"])[:-1]
    path.write_text(f'{{"order": {order},\n  "customer": {{"name": {text}}}}}}}')
    code, _, err = run(capsys, *decide)
    assert code == 1
    assert f"json_invalid: {path}:2:{column}: invalid JSON: \\u" in err
    assert "is half of a UTF-16 surrogate pair, alone" in err


@pytest.mark.parametrize("text", ['"\\ud83d\\ude00"', '"\\\\ud800"', '"\\u00e9\\\\"'])
def test_facts_take_a_surrogate_pair_and_an_escaped_backslash(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str
) -> None:
    path = tmp_path / "facts.json"
    decide = ("decide", "routing", str(path), "--policies", str(FIXTURE), "--at", AT)
    order = {**FACTS["order"], "customer": {"name": json.loads(text)}}
    path.write_text(json.dumps({"order": order}).replace(json.dumps(json.loads(text)), text))
    assert text in path.read_text()
    code, out, err = run(capsys, *decide)
    assert code == 0 and "queue: vip" in out, err


def test_settings_and_a_batch_line_refuse_a_lone_surrogate(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps(FACTS))
    decide = ("decide", "routing", str(facts), "--policies", str(FIXTURE), "--at", AT)
    code, _, err = run(capsys, *decide, "--settings", '{"note": "\\udfff"}')
    assert code == 2 and "usage: --settings is not valid JSON: \\udfff is half of" in err
    source = tmp_path / "q.jsonl"
    source.write_text(request().replace('"card"', '"card\\ud800"') + "\n" + request() + "\n")
    output = tmp_path / "decisions.jsonl"
    assert run(capsys, *batch(str(source), "-o", str(output)))[0] == 1
    results = [json.loads(line) for line in output.read_text().splitlines()]
    assert results[0]["errors"][0]["code"] == "json_invalid"
    assert results[1]["outcome"]["queue"] == "vip"


@pytest.mark.parametrize("bom", [b"\xef\xbb\xbf", b""])
def test_decide_reads_facts_saved_with_a_byte_order_mark_as_without(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, bom: bytes
) -> None:
    """Windows editors save JSON with a UTF-8 BOM; RFC 8259 lets a parser ignore it (was
    `invalid JSON: Unexpected UTF-8 BOM (decode using utf-8-sig)`). A mistake after it is
    still placed on its line and column."""
    path = tmp_path / "facts.json"
    decide = ("decide", "routing", str(path), "--policies", str(FIXTURE), "--at", AT)
    path.write_bytes(bom + json.dumps(FACTS).encode())
    code, out, _ = run(capsys, *decide)
    assert code == 0 and "queue: vip" in out
    path.write_bytes(bom + b'{"order":\n  {"total": }}')
    code, _, err = run(capsys, *decide)
    assert code == 1 and f"{path}:2:13: invalid JSON" in err, err


def test_a_decisions_text_keeps_each_reason_on_its_line_whatever_the_facts_hold(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A detail the reason quotes held a newline, an escape sequence and a carriage return:
    the text printed a line of its own (FAKE LINE) and overwrote it. Escaped in the text, as
    the audit's are; the JSON keeps the text as it is."""
    facts = json.loads((ROOT / "examples" / "exemption-claims.json").read_text("utf-8"))
    detail = "自社で契約した後の見積依頼\n\x1b[31mFAKE LINE\rX"
    facts["estimate"]["exclusion_detail"] = detail
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(facts, ensure_ascii=False), "utf-8")
    decide = ("decide", "exemption-claims", str(path), "--at", "2024-09-22T00:00:00+09:00")
    code, out, _ = run(capsys, *decide, "--policies", str(ROOT / "policies"))
    assert code == 0
    [line] = [line for line in out.splitlines() if "OTHER_REASON" in line]
    assert line.endswith("内容：自社で契約した後の見積依頼\\n\\x1b[31mFAKE LINE\\rX")
    assert "\x1b" not in out and "\r" not in out
    code, out, _ = run(capsys, *decide, "--policies", str(ROOT / "policies"), "--format", "json")
    [reason] = [r for r in json.loads(out)["reasons"] if r["code"] == "OTHER_REASON"]
    assert reason["message"]["ja"].endswith(detail)
