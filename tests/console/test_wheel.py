"""The wheel carries the console as built, so `pip install` users need no Node; and the
build the tests use is the build of the sources as they are now."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from engine.console.assets import STATIC
from tests import ROOT


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_the_build_is_newer_than_every_source_of_the_console() -> None:
    """What `make` checks before building: a test run on a stale build would test old code."""
    built = (STATIC / "index.html").stat().st_mtime
    sources = [
        p for p in (ROOT / "console").rglob("*") if p.is_file() and "node_modules" not in p.parts
    ]
    # the editor's completion is built from these (console/src/editor.ts)
    sources += [ROOT / "schemas" / "policy.schema.json", ROOT / "schemas" / "tests.schema.json"]
    assert sources
    stale = [str(p.relative_to(ROOT)) for p in sources if p.stat().st_mtime > built]
    assert stale == [], "run 'make console'"


def test_the_wheel_carries_every_built_file_of_the_console(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "engine", source / "engine", ignore=shutil.ignore_patterns("__pycache__")
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = (tmp_path / "dist").glob("kimari-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        inside = {
            name: _digest(archive.read(name))
            for name in archive.namelist()
            if name.startswith("engine/console/static/")
        }
        catalogue = archive.read("engine/locale/ja/LC_MESSAGES/kimari.mo")
    built = {
        "engine/console/static/" + str(p.relative_to(STATIC)): _digest(p.read_bytes())
        for p in STATIC.rglob("*")
        if p.is_file()
    }
    assert "engine/console/static/index.html" in built and len(built) > 10
    assert inside == built
    # and the compiled message catalogue (docs/messages.md): pip users need no Babel either
    assert catalogue == (ROOT / "engine/locale/ja/LC_MESSAGES/kimari.mo").read_bytes()
