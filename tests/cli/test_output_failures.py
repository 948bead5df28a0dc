"""A write to the output that fails is no internal error: a reader that left (`| head -1`)
ends the command quietly with 1 (click's own answer to a broken pipe), a full disk
(/dev/full) is `file_unwritable` with its reason, exit 2, whichever command was writing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests import ROOT

AT = "2024-06-01T10:00:00+09:00"
COMMANDS = {
    "decide": ["decide", "cancellation-fees", "examples/cancellation-fees.json", "--at", AT],
    "validate": ["validate", "policies"],
    "batch": ["batch", "order-holds", "examples/order-holds.requests.jsonl", "--no-progress"],
}


def kimari(args: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "engine.cli", *args],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        **kwargs,  # type: ignore[call-overload]
    )


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_full_disk_is_named_with_its_reason(name: str) -> None:
    with Path("/dev/full").open("wb") as full:
        process = kimari(COMMANDS[name], stdout=full)
        _, err = process.communicate(timeout=120)
    text = err.decode()
    assert process.returncode == 2, text
    assert "file_unwritable: cannot write the output: No space left on device" in text
    assert "internal error" not in text and "Traceback" not in text


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_reader_that_left_ends_the_command_quietly(name: str) -> None:
    process = kimari(COMMANDS[name], stdout=subprocess.PIPE)
    assert process.stdout is not None
    process.stdout.close()  # the reader is gone before the first line: every write fails
    _, err = process.communicate(timeout=120)
    assert (process.returncode, err.decode()) == (1, "")


def test_with_a_reader_that_stays_the_output_is_whole() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", *COMMANDS["decide"]],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.decode().startswith("cancellation-fees (")


def _file_size_limit() -> None:  # in the child: writes past 4 KiB fail as on a full disk
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


DECIDE = ["decide", "cancellation-fees", "examples/cancellation-fees.json", "--at", AT]
ARGS = {  # 160 KB and 18 KB of JSON, written at once
    "test": ["test", "policies", "--format", "json"],
    "decide": [*DECIDE, "--explain", "--format", "json"],
}


@pytest.mark.parametrize("name", list(ARGS))
def test_an_output_the_disk_takes_only_part_of_is_refused_not_cut(
    name: str, tmp_path: Path
) -> None:
    """One large write past the space left comes back short, and CPython's text layer drops
    the rest without a word: the output was cut and the command said 0."""
    target = tmp_path / "out.json"
    with target.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", *ARGS[name]],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.PIPE,
            preexec_fn=_file_size_limit,  # a test's child: no threads yet
        )
        _, err = process.communicate(timeout=120)
    assert process.returncode == 2, (err.decode(), target.stat().st_size)
    assert "file_unwritable: cannot write the output" in err.decode()
    assert target.stat().st_size == 4096


def test_a_batch_file_the_disk_fills_stays_partial_and_says_so(tmp_path: Path) -> None:
    """The last of a batch's output reaches its file when the file is closed: a full disk
    failing there left NAME.partial without the note that says where the decisions are."""
    target = tmp_path / "decisions.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", *COMMANDS["batch"], "-o", str(target)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        preexec_fn=_file_size_limit,  # a test's child: no threads yet
    )
    _, err = process.communicate(timeout=120)
    text = err.decode()
    assert process.returncode == 2, text
    assert not target.exists()
    assert Path(f"{target}.partial").stat().st_size == 4096
    assert f"the decisions made are in {target}.partial; {target} was not written" in text
    assert "file_unwritable: cannot write the output" in text
