"""The lifecycle commands refuse what names no one and nothing (a blank --as, a misspelt
policy), say a bad --since once, and print messages as one line each (a newline in a
message forges no audit row), the JSON reports keeping them exact."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.cli.main import main
from engine.lifecycle.workflow import Lifecycle, Rules
from tests import ROOT

POLICY = "cancellation-fees"
FORGED = (
    "ok\n2026-01-01 00:00:00 bob          approve   cancellation-fees@9  forged\tx\x1b[2J a\\nb"
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the shipped policies, bootstrapped into var/kimari.sqlite3 beside them."""
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    with Lifecycle(tmp_path / "var" / "kimari.sqlite3", Rules(workers=1), files=True) as lc:
        lc.bootstrap(tmp_path / "policies")
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], project: Path, *args: str) -> tuple[int, str, str]:
    store = ["--store", str(project / "var" / "kimari.sqlite3")]
    code = main([*args, *store])
    out, err = capsys.readouterr()
    assert "internal error" not in err and "Traceback" not in err, err
    return code, out, err


def retitle(project: Path, title: str) -> Path:
    path = project / "policies" / f"{POLICY}.yaml"
    text = path.read_text("utf-8")
    path.write_text(text.replace("en: Cancellation fees}", f"en: {title}}}", 1), "utf-8")
    return path


@pytest.mark.parametrize("name", ["", "   ", "\t"])
def test_a_blank_as_is_a_usage_error_naming_the_option(
    capsys: pytest.CaptureFixture[str], project: Path, name: str
) -> None:
    retitle(project, "Cancellation charges")
    policies = ["--policies", str(project / "policies")]
    code, _, err = run(capsys, project, "draft", POLICY, "--as", name, *policies)
    assert code == 2 and "usage: --as wants a name" in err, err
    code, out, err = run(capsys, project, "draft", POLICY, "--as", " carol ", *policies)
    assert code == 0 and out.rstrip().endswith("by carol"), (out, err)


def test_a_bad_since_is_said_once_without_a_pointer(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    for option in ("--since", "--until"):
        code, _, err = run(capsys, project, "impact", POLICY, option, "abc")
        assert code == 2, err
        assert err.strip() == f'usage: {option}: "abc" is not a valid date-time (RFC 3339)'
    window = ["--since", "2030-01-01", "--until", "2020-01-01"]
    code, _, err = run(capsys, project, "impact", POLICY, *window)
    assert code == 2, err
    assert err.strip() == "usage: --until is before --since: the window holds no decision"


@pytest.mark.parametrize(
    "args",
    [
        ["revisions", "cancellation-fee"],
        ["diff", "cancellation-fee"],
        ["impact", "cancellation-fee"],
        ["publish", "cancellation-fee"],
        ["rollback", "cancellation-fee", "--to", "1"],
        ["approve", "cancellation-fee@1"],
        ["audit", "cancellation-fee"],
    ],
)
def test_a_misspelt_policy_is_unknown_with_the_nearest_id(
    capsys: pytest.CaptureFixture[str], project: Path, args: list[str]
) -> None:
    policies = [] if args[0] in ("rollback", "approve", "audit", "revisions") else ["--policies"]
    extra = [str(project / "policies")] if policies else []
    code, out, err = run(capsys, project, *args, *policies, *extra)
    assert code == 2, (out, err)
    assert "unknown_policy: no policy 'cancellation-fee'" in err, err
    assert "did you mean 'cancellation-fees'?" in err, err


@pytest.mark.parametrize("command", ["diff", "impact", "publish", "draft"])
def test_a_policy_file_that_is_not_there_is_named_not_read_as_its_id(
    capsys: pytest.CaptureFixture[str], project: Path, command: str
) -> None:
    """`kimari diff missing.yaml` said the store had no published 'missing'; the file named
    is what is missing. A file that is there is read as before."""
    missing = str(project / "policies" / "cancellation-fee.yaml")
    code, out, err = run(capsys, project, command, missing)
    assert code == 2, (out, err)
    assert err.strip() == f"unknown_policy: no policy file {missing}", err
    present = str(project / "policies" / "cancellation-fees.yaml")
    assert run(capsys, project, "diff", present)[0] == 0


def test_a_known_policy_without_revisions_is_listed_as_having_none(
    capsys: pytest.CaptureFixture[str], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run(capsys, project, "revisions", POLICY)
    assert code == 0 and f"{POLICY}@1" in out
    new = project / "policies" / "new-policy.yaml"
    new.write_text((project / "policies" / f"{POLICY}.yaml").read_text("utf-8"), "utf-8")
    monkeypatch.chdir(project)  # its file in ./policies: known, though never stored
    code, out, err = run(capsys, project, "revisions", "new-policy")
    assert (code, out.strip()) == (0, "no revisions"), err


def test_messages_with_controls_are_one_line_in_text_and_exact_in_json(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    retitle(project, "Cancellation charges")
    policies = ["--policies", str(project / "policies")]
    code, _, err = run(capsys, project, "draft", POLICY, "-m", FORGED, "--as", "alice", *policies)
    assert code == 0, err
    code, out, _ = run(capsys, project, "audit", POLICY)
    assert code == 0 and len(out.splitlines()) == 3, out  # draft, bootstrap's submit, bootstrap
    assert "message=ok\\n2026-01-01" in out and "forged\\tx\\x1b[2J" in out, out
    assert "a\\\\nb" in out  # a backslash written is doubled: no escape is forged either
    code, out, _ = run(capsys, project, "audit", POLICY, "--format", "json")
    assert json.loads(out)[0]["detail"]["message"] == FORGED
    code, out, _ = run(capsys, project, "revisions", POLICY)
    assert "    ok\\n2026-01-01" in out and "\n2026-01-01" not in out, out
    code, out, _ = run(capsys, project, "revisions", POLICY, "--format", "json")
    assert json.loads(out)["revisions"][0]["message"] == FORGED


def test_the_message_of_a_submitted_draft_shows_in_the_audit_trail(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    retitle(project, "Cancellation charges")
    policies = ["--policies", str(project / "policies")]
    code, _, err = run(capsys, project, "draft", POLICY, "-m", "draft message", *policies)
    assert code == 0, err
    code, _, err = run(
        capsys, project, "publish", POLICY, "--draft", "2", "-m", "submit message", "--as", "bob",
        "--workers", "1", *policies,
    )  # fmt: skip
    assert code == 0, err
    code, out, _ = run(capsys, project, "audit", POLICY, "--limit", "2")
    submit = next(line for line in out.splitlines() if " submit " in line)
    assert "bob" in submit and "message=submit message" in submit, out


def test_impact_reads_a_file_or_standard_input_alike(
    capsys: pytest.CaptureFixture[str], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`kimari log --format jsonl | kimari impact --from -`: `-` was read as a file name."""
    import io

    from tests.lifecycle.conftest import cancellation, log_decisions

    store = project / "var" / "kimari.sqlite3"
    log_decisions(store, project / "policies", POLICY, [cancellation(d) for d in range(6)])
    code, logged, _ = run(capsys, project, "log", "--policy", POLICY, "--format", "jsonl")
    assert code == 0 and logged.count("\n") == 6
    lines = project / "logged.jsonl"
    lines.write_text(logged, "utf-8")
    files = ("--policies", str(project / "policies"), "--workers", "1", "--no-progress")
    args = ("impact", POLICY, "--format", "json", *files)
    code, from_file, _ = run(capsys, project, *args, "--from", str(lines))
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(logged.encode())))
    code_stdin, from_stdin, _ = run(capsys, project, *args, "--from", "-")
    assert code == code_stdin == 0
    by_file, by_stdin = json.loads(from_file), json.loads(from_stdin)
    assert by_stdin["source"]["file"] == "-" and by_stdin["replayed"] == 6
    for key in ("replayed", "changed", "unchanged", "failed"):
        assert by_file[key] == by_stdin[key], key
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(logged.encode())))
    code, text, _ = run(capsys, project, "impact", POLICY, *files, "--from", "-")
    assert code == 0 and "replayed 6 decisions of standard input" in text, text
