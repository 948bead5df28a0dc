"""A ref typed on the command line that no file system could open (a name too long, a NUL
character, a folder) names no revision: unknown_revision, or a file error, never an
internal error with the OSError's trace."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli.main import main
from engine.core.errors import UsageError
from engine.lifecycle.workflow import Lifecycle

POLICY = "cancellation-fees"
LONG = "a" * 300


def _run(capsys: pytest.CaptureFixture[str], lifecycle: Lifecycle, *args: str) -> tuple[int, str]:
    code = main([*args, "--store", str(lifecycle.path)])
    err = capsys.readouterr().err
    assert "internal error" not in err and "Traceback" not in err and "Errno" not in err, err
    return code, err


@pytest.mark.parametrize(
    "args",
    [
        ["diff", POLICY, "--to", LONG],
        ["impact", POLICY, "--draft", LONG, "--no-progress"],
        ["impact", POLICY, "--against", LONG, "--no-progress"],
        ["rollback", POLICY, "--to", LONG, "--as", "alice"],
        ["publish", POLICY, "--draft", LONG, "--as", "alice"],
    ],
)
def test_a_ref_too_long_for_a_file_name_names_no_revision(
    capsys: pytest.CaptureFixture[str], lifecycle: Lifecycle, args: list[str]
) -> None:
    code, err = _run(capsys, lifecycle, *args)
    assert code == 2 and err.startswith("unknown_revision:"), err


@pytest.mark.parametrize(
    "args",
    [
        ["diff", POLICY, "--to", LONG + ".yaml"],
        ["publish", LONG + ".yaml", "--as", "alice"],
        ["draft", POLICY, "--file", LONG + ".yaml", "--as", "alice"],
    ],
)
def test_a_policy_file_too_long_to_open_is_no_policy_file(
    capsys: pytest.CaptureFixture[str], lifecycle: Lifecycle, args: list[str]
) -> None:
    code, err = _run(capsys, lifecycle, *args)
    assert code == 2 and err.startswith("unknown_policy: no policy file"), err


def test_a_data_file_too_long_to_open_is_unreadable(
    capsys: pytest.CaptureFixture[str], lifecycle: Lifecycle
) -> None:
    data = f"blacklist={LONG}.yaml"
    code, err = _run(capsys, lifecycle, "impact", "order-holds", "--data", data, "--no-progress")
    assert code == 2 and err.startswith("file_unreadable:"), err


def test_a_nul_or_a_folder_names_no_revision_and_a_file_still_does(
    lifecycle: Lifecycle, folder: Path
) -> None:
    for ref in ("a\x00b", "a\x00b.yaml", str(folder), str(folder.parent)):
        with pytest.raises(UsageError) as caught:
            lifecycle.resolve(POLICY, ref)
        assert caught.value.code == "unknown_revision", ref
    (folder / "x.yaml").mkdir()
    with pytest.raises(UsageError) as caught:
        lifecycle.resolve(POLICY, str(folder / "x.yaml"))
    assert caught.value.code == "unknown_policy"
    path = str(folder / f"{POLICY}.yaml")
    assert lifecycle.resolve(POLICY, path).revision == lifecycle.resolve(POLICY, "1").revision


def test_a_test_file_that_cannot_be_read_is_a_file_error(
    capsys: pytest.CaptureFixture[str], lifecycle: Lifecycle, folder: Path
) -> None:
    (folder / f"{POLICY}.tests.yaml").write_bytes(b"- name: x\n  facts: \xff\n")
    code, err = _run(capsys, lifecycle, "diff", POLICY, "--policies", str(folder))
    assert code == 2 and f"{POLICY}.tests.yaml:2:10: file_unreadable:" in err, err
    assert "0xff" in err


def test_a_hash_prefix_of_digits_only_names_its_revision_where_no_revision_has_that_number(
    lifecycle: Lifecycle, folder: Path
) -> None:
    """One content hash in sixteen starts with six digits: its prefix was read as revision
    number 482913, and a revision copied from `kimari revisions` was "not found"."""
    from engine.lifecycle.candidates import from_path

    path = folder / f"{POLICY}.yaml"
    text = path.read_text(encoding="utf-8")
    for n in range(400):  # ~(10/16)^7 of hashes start with seven digits: a few hundred tries
        path.write_text(text + f"\n# {n}\n", encoding="utf-8")
        candidate = from_path(path, POLICY)
        if candidate.revision[:7].isdigit():
            break
    else:
        pytest.fail("no hash of seven leading digits in 400 texts")
    record, _ = lifecycle.submit(candidate, "alice", "digits")
    prefix = candidate.revision[:7]
    assert lifecycle.resolve(POLICY, prefix).record == record
    assert lifecycle.diff(POLICY, "1", prefix)["to"]["revision"] == candidate.revision
    path.write_text(text + "\n# later\n", encoding="utf-8")
    lifecycle.submit(from_path(path, POLICY), "alice", "later")
    assert lifecycle.rollback(POLICY, prefix, "bob", "back").number == record.number
    # a number that is a revision's stays that revision; one that is no hash's is unknown
    assert lifecycle.resolve(POLICY, "1").record == lifecycle.record(POLICY, 1)
    with pytest.raises(UsageError) as unknown:
        lifecycle.resolve(POLICY, "9999999")
    assert "has no revision 9999999" in unknown.value.diagnostics[0].message
