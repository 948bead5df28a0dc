"""The HTTP front routes frames to workers: it must not load an evaluator, a compiler, or
durable_rules. A front that did would pay their start-up time and memory on every restart,
and a bug in them could take down the process that keeps the port open.

Checked in a fresh interpreter, since this test session has long imported everything.
"""

from __future__ import annotations

import subprocess
import sys

import orjson

from tests import ROOT

# durable_rules' C extension is `durable_rules_engine` (what engine/durable/adapter.py
# imports); `durable` is the package's Python layer, and `rules` the extension's older name.
FORBIDDEN_MODULES = ("durable", "rules", "durable_rules_engine", "jsonschema")
FORBIDDEN_PACKAGES = (
    "engine.compile",
    "engine.runtime",
    "engine.flow",
    "engine.project",
    "engine.source",
    "engine.durable",
    "engine.lang",
)


def _modules_after_import(module: str) -> list[str]:
    code = f"import sys, orjson, {module}; print(orjson.dumps(sorted(sys.modules)).decode())"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return list(orjson.loads(done.stdout))


def test_importing_the_http_front_loads_no_evaluator_compiler_or_durable_rules() -> None:
    loaded = _modules_after_import("engine.service.http")
    assert "engine.service.http" in loaded  # the probe itself worked
    assert [m for m in FORBIDDEN_MODULES if m in loaded] == []
    inside = [m for m in loaded if any(m == p or m.startswith(p + ".") for p in FORBIDDEN_PACKAGES)]
    assert inside == []
