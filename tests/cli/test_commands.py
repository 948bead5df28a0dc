"""The `kimari` command: output and exit codes (0 ok, 1 failures, 2 usage or policy errors)."""

from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path

import pytest

from engine.cli.main import cli, main
from tests import FIXTURES, ROOT

FIXTURE = FIXTURES / "project"
AT = "2024-09-01T10:00:00+09:00"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "policies"
    shutil.copytree(FIXTURE, folder)
    return folder


@pytest.fixture()
def facts_file(tmp_path: Path) -> Path:
    path = tmp_path / "facts.json"
    path.write_text(
        json.dumps({"order": {"total": 150000, "sequence": 1, "payment": {"method": "card"}}})
    )
    return path


def test_validate_exits_0_on_good_policies(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "validate", str(FIXTURE))
    assert code == 0
    assert "4 policies, 1 test file: 0 errors" in err + _


def test_validate_checks_the_test_files_of_the_policies_that_compile_beside_a_broken_one(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    routing = project / "routing.yaml"
    routing.write_text(routing.read_text().replace("order.total >= 100000", "order.totl >= 1"))
    (project / "routing.tests.yaml").write_text("policy: routing\ncases: []\n")
    tests = project / "holds.tests.yaml"
    tests.write_text(tests.read_text().replace("cases:", "casse:", 1))
    code, _, err = run(capsys, "validate", str(project))
    assert code == 2
    assert "routing.yaml:16:17: unknown_fact_field" in err  # the broken policy
    assert "holds.tests.yaml:" in err  # and the other policy's broken test file
    assert "4 policies, 1 test file (1 more not checked: their policies do not compile)" in err


def test_validate_of_a_policy_file_checks_the_test_file_beside_it(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    tests = project / "holds.tests.yaml"
    tests.write_text(tests.read_text().replace("cases:", "casse:", 1))
    code, _, err = run(capsys, "validate", str(project / "holds.yaml"))
    assert code == 2  # was 0: "0 test files", the policy's own cases never read
    assert "holds.tests.yaml:" in err and "1 test file: " in err
    code, out, err = run(capsys, "validate", str(project / "routing.yaml"))  # it has none
    assert code == 0 and "0 test files" in out + err


def test_validate_of_files_reports_theirs_only_and_reads_each_folder_once(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    """A file named alone is checked with its folder but reported alone (it said "4 policies"
    and listed every other policy's problems); a folder named twice is counted once."""
    routing = project / "routing.yaml"
    routing.write_text(routing.read_text().replace("order.total >= 100000", "order.totl >= 1", 1))
    code, out, err = run(capsys, "validate", str(project / "holds.yaml"))
    assert code == 0 and "routing.yaml" not in err
    assert "1 policy, 1 test file: 0 errors" in out + err
    code, _, err = run(capsys, "validate", str(routing), str(project / "holds.yaml"))
    assert code == 2 and "routing.yaml:12:18: unknown_fact_field" in err
    assert "2 policies, 1 test file: 1 error" in err
    code, _, err = run(capsys, "validate", str(project), str(project))
    assert code == 2 and err.count("unknown_fact_field") == 1
    assert "4 policies, 1 test file: 1 error" in err


def test_validate_of_a_test_file_reports_its_broken_policy(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    holds = project / "holds.yaml"
    holds.write_text(holds.read_text().replace("order.total", "order.totl", 1))
    code, _, err = run(capsys, "validate", str(project / "holds.tests.yaml"))
    assert code == 2  # was 0: "0 errors", the test file left unchecked and its policy unread
    assert "holds.yaml:" in err and "unknown_fact_field" in err
    assert "(1 more not checked: their policies do not compile)" in err


def test_a_yml_policy_is_named_not_passed_over(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    """kimari reads *.yaml: a policy saved as .yml passed `validate` and was never served."""
    (project / "extra.yml").write_text((project / "routing.yaml").read_text())
    code, out, err = run(capsys, "validate", str(project))
    assert code == 0
    assert "warning: ignored_file: " in err and "extra.yml is not read" in err
    assert "rename it to extra.yaml" in err and "1 warning" in out + err
    code, _, err = run(capsys, "validate", str(project / "extra.yml"))
    assert code == 2 and "not_a_policy_file: " in err


def test_a_data_file_named_to_validate_points_at_its_project(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    code, _, err = run(capsys, "validate", str(project / "data" / "blacklist.yaml"))
    assert code == 2  # each data file was compiled as a policy: "document must be object"
    assert "not_a_policy_file: " in err and "is a data file" in err
    assert f"kimari validate {project}" in err


def test_validate_exits_2_with_file_line_col_and_a_caret_on_a_broken_copy(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    path = project / "routing.yaml"
    path.write_text(path.read_text().replace("order.total >= 100000\n", "order.totl >= 100000\n"))
    code, _, err = run(capsys, "validate", str(project))
    assert code == 2
    assert (
        "routing.yaml:16:17: unknown_fact_field: unknown fact field 'order.totl' "
        "(did you mean 'order.total'?)" in err
    )
    assert "\n        when: order.totl >= 100000\n" in err
    assert "\n                    ^" in err


def test_validate_can_answer_in_json(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    (project / "routing.yaml").write_text("kimari: 1\nid: routing\n")
    code, out, _ = run(capsys, "validate", str(project), "--format", "json")
    assert code == 2
    errors = json.loads(out)["errors"]
    assert {e["code"] for e in errors} == {"missing_key"}
    assert all(e["location"]["file"].endswith("routing.yaml") for e in errors)


def test_test_exits_0_when_every_case_passes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "test", str(FIXTURE))
    assert code == 0
    assert "6 passed, 0 failed, 0 errors" in out
    assert "rules of holds that no case applied: strict-np" in out


def test_test_exits_1_and_shows_a_diff_and_the_false_condition(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    path = project / "holds.tests.yaml"
    path.write_text(
        path.read_text().replace(
            "expect: {fired: [], outcome: {held: false,",
            "expect: {fired: [big], outcome: {held: true,",
        )
    )
    code, out, _ = run(capsys, "test", str(project))
    assert code == 1
    assert "FAIL " in out and "holds: a small card order is not held" in out
    assert "outcome.held: expected true, got false" in out  # as YAML and JSON write them
    assert "rule big did not apply: " in out
    assert "holds.yaml:30:11: `order.total > settings.limit` is false" in out
    assert "order.total=5000, settings.limit=10000" in out


def test_decide_prints_the_decision_and_the_explanation(
    capsys: pytest.CaptureFixture[str], facts_file: Path
) -> None:
    code, out, _ = run(
        capsys,
        "decide",
        "routing",
        str(facts_file),
        "--policies",
        str(FIXTURE),
        "--at",
        AT,
        "--explain",
    )
    assert code == 0
    assert "queue: vip" in out
    assert "✓ vip (TS-1) applied" in out
    assert "~ large (TS-1) matched" in out
    assert "✗ cod (TS-1) failed" in out
    assert 'false: order.payment.method == "cod"' in out and "routing.yaml:20:11" in out


def test_decide_answers_in_json_with_the_revision(
    capsys: pytest.CaptureFixture[str], facts_file: Path
) -> None:
    code, out, _ = run(
        capsys,
        "decide",
        str(FIXTURE / "routing.yaml"),
        str(facts_file),
        "--at",
        AT,
        "--format",
        "json",
        "--backend",
        "python",
    )
    body = json.loads(out)
    assert code == 0
    assert body["policy"]["id"] == "routing" and len(body["policy"]["revision"]) == 16
    assert body["fired"] == ["vip"] and body["backend"] == "python"


def test_decide_reads_facts_from_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    facts = {"order": {"total": 1, "sequence": 1, "payment": {"method": "cod"}}}
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(json.dumps(facts).encode())))
    code, out, _ = run(capsys, "decide", "routing", "-", "--policies", str(FIXTURE), "--at", AT)
    assert code == 0 and "queue: cod" in out


def test_decide_exits_1_on_invalid_facts_with_their_pointers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"order": {"total": "x", "sequence": 1, "payment": {"method": "np"}}}')
    code, _, err = run(capsys, "decide", "routing", str(path), "--policies", str(FIXTURE))
    assert code == 1
    assert "/facts/order/total: type_mismatch: expected integer, got string" in err


def test_decide_exits_1_on_malformed_json_with_its_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"order":\n  {"total": 1,,}}')
    code, _, err = run(capsys, "decide", "routing", str(path), "--policies", str(FIXTURE))
    assert code == 1
    assert "bad.json:2:15: invalid JSON" in err


def test_decide_exits_1_on_a_file_that_is_not_utf_8_with_the_line_and_column_of_the_byte(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes('{"order": {"name": "café"}}'.encode("latin-1"))
    code, _, err = run(capsys, "decide", "routing", str(path), "--policies", str(FIXTURE))
    assert code == 1 and "Traceback" not in err
    assert "latin1.json:1:24: file_not_utf8: the file is not UTF-8: byte 0xe9 here" in err


def nested(depth: int) -> str:
    """Facts whose deepest array sits at `depth` (the facts' own object is 1)."""
    return '{"order": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


def test_decide_refuses_facts_a_request_could_not_carry_with_the_pointer_past_the_limit(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "deep.json"
    # The facts sit at /facts, one level below a request's object, as in the service
    path.write_text(nested(63))
    code, _, err = run(capsys, "decide", "routing", str(path), "--policies", str(FIXTURE))
    assert code == 1 and "json_too_deep" not in err  # read (and refused by its type)
    path.write_text(nested(64))
    code, _, err = run(capsys, "decide", "routing", str(path), "--policies", str(FIXTURE))
    pointer = "/facts/order" + "/0" * 62  # the array at depth 64 of the file, 65 of a request
    assert code == 1
    assert f"{pointer}: json_too_deep: objects and arrays may be nested at most 64 deep" in err


def test_decide_refuses_facts_nested_past_what_the_parser_reads_without_a_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = nested(5_000).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(deep)))
    code, _, err = run(capsys, "decide", "routing", "-", "--policies", str(FIXTURE))
    assert code == 1 and "Traceback" not in err and "internal error" not in err
    assert "/facts: json_too_deep: <stdin>: objects and arrays may be nested at most 64" in err


@pytest.mark.parametrize("depth", [100, 5_000])
def test_decide_refuses_settings_nested_too_deep_as_a_usage_error(
    capsys: pytest.CaptureFixture[str], facts_file: Path, depth: int
) -> None:
    settings = '{"a": ' + "[" * depth + "]" * depth + "}"
    code, _, err = run(
        capsys,
        "decide",
        "routing",
        str(facts_file),
        "--policies",
        str(FIXTURE),
        "--settings",
        settings,
    )
    assert code == 2 and "Traceback" not in err
    assert "json_too_deep: --settings: objects and arrays may be nested at most 64 deep" in err
    if depth == 100:  # read, then refused where it passes 64 as a request's /settings
        assert err.startswith("/settings/a" + "/0" * 62 + ": json_too_deep")


def test_decide_exits_2_on_an_unknown_policy_with_a_suggestion(
    capsys: pytest.CaptureFixture[str], facts_file: Path
) -> None:
    code, _, err = run(capsys, "decide", "routng", str(facts_file), "--policies", str(FIXTURE))
    assert code == 2
    assert "unknown_policy: no policy 'routng'" in err and "did you mean 'routing'?" in err


def test_decide_exits_2_on_bad_settings_json(
    capsys: pytest.CaptureFixture[str], facts_file: Path
) -> None:
    code, _, err = run(
        capsys,
        "decide",
        "routing",
        str(facts_file),
        "--policies",
        str(FIXTURE),
        "--settings",
        "{nope",
    )
    assert code == 2 and "--settings is not valid JSON" in err


@pytest.mark.parametrize("command", [[], *([name] for name in cli.commands)])
def test_every_command_has_help(capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0
    assert "Usage: kimari" in out


def test_an_unknown_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "validate", "--nope")
    assert code == 2 and "No such option" in err


@pytest.mark.parametrize(
    "command",
    [
        ["batch", "routing", "{missing}"],
        ["decide", "routing", "{missing}"],
        ["validate", "{missing}"],
        ["test", "{missing}"],
        ["flow", "routing", "E-1", "{missing}", "--actor", "a-1", "--role", "r"],
    ],
)
def test_every_input_that_cannot_be_read_is_file_unreadable(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str]
) -> None:
    missing = str(tmp_path / "requests.jsonl")
    args = [a.replace("{missing}", missing) for a in command]
    if command[0] in ("batch", "decide", "flow"):
        args += ["--policies", str(FIXTURE)]
    code, _, err = run(capsys, *args)
    assert code == 2
    assert f"file_unreadable: cannot read {missing}: No such file or directory" in err
    assert "internal error" not in err


def test_test_of_a_policy_file_runs_the_cases_beside_it(capsys: pytest.CaptureFixture[str]) -> None:
    policy = next(FIXTURE.glob("*.tests.yaml")).name.removesuffix(".tests.yaml")
    code, out, _ = run(capsys, "test", str(FIXTURE / f"{policy}.yaml"))
    assert code == 0
    passed = int(out.strip().splitlines()[-1].split()[0])
    assert passed > 0
    assert "rulebook IDs no rule cites" not in out  # one policy: not the whole rulebook's gaps


def test_test_of_a_policy_without_cases_says_so_and_exits_2(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    code, out, err = run(capsys, "test", str(project / "routing.yaml"))  # no routing.tests.yaml
    assert code == 2
    expected = "no_test_cases: policy 'routing' has no test cases: write them in routing.tests.yaml"
    assert expected in out + err


def test_log_refuses_a_since_before_year_1_as_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from engine.store.decisions import DecisionLog

    store = tmp_path / "s.db"
    DecisionLog(store).close()  # a log with nothing in it
    code, _, err = run(capsys, "log", "--since", "99999999d", "--store", str(store))
    assert code == 2 and "Traceback" not in err
    assert '--since: "99999999d" is out of range' in err


@pytest.mark.parametrize("since", ["1w", "yesterday", "2024-10-01T10:00"])
def test_a_since_log_cannot_read_says_which_forms_it_reads(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, since: str
) -> None:
    from engine.store.decisions import DecisionLog

    store = tmp_path / "s.db"
    DecisionLog(store).close()
    code, _, err = run(capsys, "log", "--since", since, "--store", str(store))
    assert code == 2
    assert "(a duration ago (45s, 15m, 2h, 7d), a date (2024-10-01) or an RFC 3339 time)" in err
    code, _, err = run(capsys, "log", "--since", "7d", "--store", str(store))
    assert code == 0 and "no decisions" in err


def test_a_symbolic_link_is_the_policy_its_own_name_says(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    """It was read as the file it points at: a link beside its target was a second copy of
    that policy, accepted silently, and a link's error named the target's file."""
    (project / "copy.yaml").symlink_to("routing.yaml")
    code, _, err = run(capsys, "validate", str(project))
    assert code == 2
    assert "copy.yaml:" in err and "policy_id_mismatch" in err and "file name 'copy'" in err
    (project / "copy.yaml").unlink()
    (project / "routing.yaml").rename(project / "route-real.yaml")
    (project / "routing.yaml").symlink_to("route-real.yaml")  # the id's own name, linked
    code, _, err = run(capsys, "validate", str(project))
    assert "route-real.yaml:" in err and "file name 'route-real'" in err
    assert "routing.yaml:" not in err.replace("route-real.yaml", "")


@pytest.mark.parametrize("number", ["1e9999999999999999999", "1e-9999999999999999999"])
def test_decide_refuses_a_number_past_decimals_range_at_its_pointer(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, number: str
) -> None:
    """It was 'internal error: InvalidOperation', exit 2."""
    path = tmp_path / "facts.json"
    text = '{"order": {"total": NUMBER, "sequence": 1, "payment": {"method": "card"}}}'
    path.write_text(text.replace("NUMBER", number))
    code, _, err = run(
        capsys, "decide", "routing", str(path), "--at", AT, "--policies", str(FIXTURE)
    )
    assert code == 1 and "/facts/order/total: out_of_range:" in err


def test_a_diagnostic_quoting_a_fact_key_is_one_line_its_controls_escaped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A key holding a newline and an escape sequence printed a second, forged error line
    (and a raw ESC to the terminal)."""
    key = "x\n/facts/order/total: type_mismatch: forged\x1b[2K"
    facts = {"order": {"total": 10, "sequence": 1, "payment": {"method": "card"}, key: 1}}
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(facts))
    code, _, err = run(
        capsys, "decide", "routing", str(path), "--at", AT, "--policies", str(FIXTURE)
    )
    assert code == 1 and "\x1b" not in err
    [line] = err.strip().splitlines()
    assert "unknown_field" in line and "\\n/facts/order/total" in line and "\\x1b[2K" in line


@pytest.fixture()
def shipped(tmp_path: Path) -> Path:
    for name in ("policies", "schemas"):
        shutil.copytree(ROOT / name, tmp_path / name)
    return tmp_path / "policies"


def test_validate_of_a_flow_reports_the_policy_it_consults_and_the_data_it_reads(
    capsys: pytest.CaptureFixture[str], shipped: Path
) -> None:
    """A flow named alone passed while the decision policy it consults was broken (its
    `kimari test` and the service failed); a policy named alone was failed by a data set
    it does not read."""
    holds = shipped / "order-holds.yaml"
    holds.write_text(
        holds.read_text().replace(
            "when: derived.blacklist_entry != null", "when: derived.blacklist_entryy != null", 1
        )
    )
    code, _, err = run(capsys, "validate", str(shipped / "order-hold-status.yaml"))
    assert code == 2 and "order-holds.yaml:" in err and "unknown_derived" in err
    shutil.copy(ROOT / "policies" / "order-holds.yaml", holds)
    blacklist = shipped / "data" / "blacklist.yaml"
    blacklist.write_text(blacklist.read_text().replace('"2023-11-02"', '"2023-13-02"', 1))
    code, _, err = run(capsys, "validate", str(shipped / "cancellation-fees.yaml"))
    assert code == 0 and "blacklist.yaml" not in err
    code, _, err = run(capsys, "validate", str(shipped / "order-hold-status.yaml"))
    assert code == 2 and "data/blacklist.yaml:" in err  # read by the policy it consults


def test_validate_of_one_file_named_twice_checks_it_once(
    capsys: pytest.CaptureFixture[str], shipped: Path
) -> None:
    tests = shipped / "cancellation-fees.tests.yaml"
    tests.write_text(
        tests.read_text().replace('at: "2024-06-01T10:00:00+09:00"', 'at: "2024-06-01T10:00:00"', 1)
    )
    again = shipped / ".." / "policies" / "cancellation-fees.tests.yaml"
    code, out, err = run(capsys, "validate", str(tests), str(again))
    assert code == 2 and err.count("at_invalid") == 1
    assert "1 policy, 1 test file: 1 error" in out + err
