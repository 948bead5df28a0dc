"""The command line's memory of clean checks (engine/cli/checks_cache.py): a command
remembers what an earlier one found clean, never hides a problem, and a cache that cannot
be used costs time, not the command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.cli import checks_cache
from engine.cli.checks_cache import add_keys, cache_file, read_keys, remembered_checks
from engine.source import memo
from tests import ROOT

A, B, C = "a" * 64, "b" * 64, "c" * 64


@pytest.fixture(autouse=True)
def fresh_memory() -> Iterator[None]:
    memo.forget()
    yield
    memo.forget()


def test_the_cache_lives_where_the_environment_says() -> None:
    assert cache_file({"KIMARI_CACHE_DIR": "/srv/c"}) == Path("/srv/c/checks.txt")
    assert cache_file({"KIMARI_CACHE_DIR": ""}) is None  # turned off
    assert cache_file({"XDG_CACHE_HOME": "/x"}) == Path("/x/kimari/checks.txt")
    home = Path.home() / ".cache" / "kimari" / "checks.txt"
    assert cache_file({"XDG_CACHE_HOME": "relative"}) == home  # the spec ignores it
    assert cache_file({}) == home


def test_only_well_formed_keys_are_read(tmp_path: Path) -> None:
    path = tmp_path / "checks.txt"
    path.write_bytes(f"{A}\nnot a key\n{B[:-1]}\n\xff\xfe\n{B}\n{C.upper()}\n{C}".encode("latin-1"))
    assert read_keys(path) == [A, B, C]
    assert read_keys(tmp_path / "missing.txt") == []


def test_keys_are_appended_and_the_file_is_halved_past_its_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "deep" / "checks.txt"
    add_keys(path, [A, B], held=0)
    add_keys(path, [], held=2)
    assert read_keys(path) == [A, B]
    monkeypatch.setattr(checks_cache, "MAX_KEYS", 4)
    keys = [f"{n:064x}" for n in range(5)]
    add_keys(path, keys, held=2)  # 7 > 4: the newest 2 are kept
    assert read_keys(path) == keys[-2:]
    assert [p.name for p in path.parent.iterdir()] == ["checks.txt"]  # no temporary file left


def test_a_cache_that_cannot_be_written_is_ignored(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    add_keys(blocker / "checks.txt", [A], held=0)  # its folder is a file: nothing raised
    assert read_keys(blocker / "checks.txt") == []


def test_a_command_tells_the_process_what_earlier_ones_learnt_and_keeps_what_it_learns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIMARI_CACHE_DIR", str(tmp_path))
    (tmp_path / "checks.txt").write_text(A + "\n")
    with remembered_checks():
        assert memo.known(A)
        memo.remember(B)
    assert read_keys(tmp_path / "checks.txt") == [A, B]
    assert memo.take_fresh() == []  # taken for the file


def test_with_the_cache_turned_off_nothing_is_read_or_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIMARI_CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with remembered_checks():
        memo.remember(B)
    assert list(tmp_path.iterdir()) == []
    assert memo.take_fresh() == [B]


def _validate(cache: Path, folder: Path) -> tuple[int, str, bool]:
    """`kimari validate folder` in a fresh process: its exit code, its output, and whether it
    imported jsonschema (it needs it only for what it has not seen clean)."""
    code = (
        "import sys; from engine.cli.main import main; code = main(sys.argv[1:]); "
        "print('jsonschema' in sys.modules); sys.exit(code)"
    )
    env = {**os.environ, "KIMARI_CACHE_DIR": str(cache), "KIMARI_LANG": "en"}
    done = subprocess.run(
        [sys.executable, "-c", code, "validate", str(folder)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    *_, imported = done.stdout.strip().splitlines()
    return done.returncode, done.stdout + done.stderr, imported == "True"


def test_a_second_command_skips_the_checks_and_still_finds_a_new_mistake(tmp_path: Path) -> None:
    for name in ("policies", "schemas"):  # the policies name their schemas as ../schemas/
        shutil.copytree(ROOT / name, tmp_path / name)
    folder = tmp_path / "policies"
    cache = tmp_path / "cache"
    first = _validate(cache, folder)
    assert first[0] == 0 and first[2], first  # checked: jsonschema was needed
    assert len(read_keys(cache / "checks.txt")) > 10
    second = _validate(cache, folder)
    assert second[0] == 0 and not second[2], second  # every check remembered
    policy = folder / "cancellation-fees.yaml"
    policy.write_text(policy.read_text().replace("\ntitle:", "\ncolour: red\ntitle:", 1))
    third = _validate(cache, folder)
    assert third[0] != 0 and "unknown key 'colour'" in third[1], third
    assert "cancellation-fees.yaml:" in third[1]
