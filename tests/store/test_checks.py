"""The store's memory of clean checks (engine/store/checks.py): kept on both backends, read
by another process, which then skips the jsonschema checks any process of the store made."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.source import memo
from engine.store.backend import Backend
from engine.store.checks import Checks
from tests import ROOT

# Compiles the shipped policies in a fresh interpreter, counting the jsonschema checks it
# really makes; with a store, it reads the store's keys first and saves what it learnt.
CHILD = """
import json, sys
from engine.source import facts, schema
from engine.store.checks import Checks
from engine.project.project import load_project

made = {"documents": 0, "facts_schemas": 0}
def counted(name, module, function):
    def call(*args):
        made[name] += 1
        return function(*args)
    setattr(module, function.__name__, call)
counted("documents", schema, schema._violations)
counted("facts_schemas", facts, facts._audit)
checks = Checks(sys.argv[1]) if len(sys.argv) > 1 else None
if checks:
    checks.load()
load_project("policies")
if checks:
    checks.save()
    checks.close()
print(json.dumps(made))
"""


@pytest.fixture(autouse=True)
def fresh_memory() -> Iterator[None]:
    memo.forget()
    yield
    memo.forget()


def child(*store: str) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *store],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def test_keys_saved_by_one_process_are_used_by_the_next(tmp_path: Path) -> None:
    store = str(tmp_path / "kimari.sqlite3")
    first = child(store)
    assert first["documents"] > 0 and first["facts_schemas"] > 0
    assert child(store) == {"documents": 0, "facts_schemas": 0}
    assert child() == first  # without the store every check is made again


def test_the_keys_learnt_are_saved_once_and_read_back(backends: Callable[[], Backend]) -> None:
    writer = Checks(backends())
    memo.remember("a" * 64)
    memo.remember("b" * 64)
    assert writer.save() == 2
    assert writer.save() == 0  # nothing new
    memo.forget()
    memo.remember("a" * 64)  # another process learnt the same key: no conflict
    assert Checks(backends()).save() == 1
    memo.forget()
    assert Checks(backends()).load() == 2
    assert memo.known("a" * 64) and memo.known("b" * 64) and not memo.known("c" * 64)
