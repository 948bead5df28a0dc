"""The package tree of docs/architecture.md holds: nothing imports a package above it."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "engine"
ROW = re.compile(r"^\| `([a-z_]+)/?` \|", re.MULTILINE)


def layers() -> list[str]:
    """Package names from top to bottom, as the architecture document lists them."""
    return ROW.findall((ROOT / "docs" / "architecture.md").read_text(encoding="utf-8"))


def _package_of(path: Path) -> str:
    rel = path.relative_to(ENGINE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            if node.module == "engine":
                found += [(node.lineno, f"engine.{a.name}") for a in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return found


def test_the_document_lists_every_package_of_the_engine() -> None:
    listed = set(layers())
    present = {p.name for p in ENGINE.iterdir() if (p / "__init__.py").exists()}
    present |= {p.stem for p in ENGINE.glob("*.py") if p.stem != "__init__"}
    assert present <= listed, f"not in docs/architecture.md: {sorted(present - listed)}"


def test_no_engine_module_imports_a_package_listed_above_its_own() -> None:
    rank = {name: i for i, name in enumerate(layers())}
    upward = []
    for path in sorted(ENGINE.rglob("*.py")):
        if path.name == "__init__.py" and path.parent == ENGINE:
            continue  # names the public API lazily (PEP 562), imports nothing at load
        mine = _package_of(path)
        for line, module in _imported(ast.parse(path.read_text(encoding="utf-8"))):
            parts = module.split(".")
            if parts[0] != "engine" or len(parts) < 2 or parts[1] == mine:
                continue
            if rank[parts[1]] < rank[mine]:
                upward.append(f"{path.relative_to(ROOT)}:{line}: {mine} imports {module}")
    assert upward == []


def test_the_language_needs_only_core_and_the_standard_library() -> None:
    code = (
        "import sys, engine.lang.check, engine.lang.calendar, engine.lang.pycompile\n"
        "print(sorted(m for m in sys.modules if m.startswith('engine.')))\n"
        "print(sorted(m for m in ('durable', 'rules', 'jsonschema', 'yaml') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.splitlines()
    loaded = ast.literal_eval(out[0])
    assert {m.split(".")[1] for m in loaded} <= {"lang", "core"}
    assert out[1] == "[]"
