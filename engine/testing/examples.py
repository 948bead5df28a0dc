"""Inputs to try a policy with: its YAML test cases, and its files in `examples/`.

    policies/order-holds.tests.yaml   each case: facts (merged over the defaults), at, settings
    examples/order-holds.json         facts, as `kimari decide` takes them
    examples/claim-status.event.json  an event of a flow

The console prefills its "try a decision" form from these (GET /v1/policies/{id}/examples).
A case is given as written, not decided: what it expects comes along so a person can
compare. A case that brings its own data sets says so (`own_data`): the service decides
with the data it serves, so such a case may decide otherwise there. A test file that does
not read is reported in `errors`, and the examples files still come.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from engine.compile.model import CompiledPolicy
from engine.core.errors import Diagnostic, KimariError, Location
from engine.core.jsonvalue import to_json_value
from engine.project.project import TESTS_SUFFIX, read_document
from engine.testing.cases import deep_merge

MAX_EXAMPLE_BYTES = 1024 * 1024


def policy_examples(policy: CompiledPolicy, folder: Path) -> dict[str, Any]:
    """`{"cases": [...], "files": [...], "errors": [...]}` for `policy` served from `folder`."""
    errors: list[Diagnostic] = []
    stem = Path(policy.path).name.removesuffix(".yaml")
    cases = _cases(policy, folder / f"{stem}{TESTS_SUFFIX}", errors)
    files = _files(policy, folder.parent / "examples", errors)
    return {"cases": cases, "files": files, "errors": [d.to_dict() for d in errors]}


def _cases(policy: CompiledPolicy, path: Path, errors: list[Diagnostic]) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    try:
        document = read_document(path)
    except KimariError as exc:
        errors.extend(exc.diagnostics)
        return []
    data = document.data
    if not isinstance(data, dict) or data.get("policy") != policy.id:
        return []
    defaults = data.get("defaults") or {}
    out = []
    for index, spec in enumerate(data.get("cases") or []):
        if not isinstance(spec, dict):
            continue
        merged = {
            key: deep_merge(defaults.get(key), spec[key]) if key in spec else defaults.get(key)
            for key in ("at", "settings", "data", "facts", "entity")
        }
        case: dict[str, Any] = {
            "name": str(spec.get("name", f"case {index + 1}")),
            "location": document.positions.value(f"/cases/{index}").to_dict(),
            "refs": list(spec.get("refs") or []),
        }
        for key in ("facts", "at", "settings", "entity"):
            if merged.get(key) is not None:
                case[key] = to_json_value(merged[key])
        if merged.get("data"):
            case["own_data"] = sorted(merged["data"])
        if isinstance(spec.get("steps"), list):
            case["events"] = [
                to_json_value(step["event"])
                for step in spec["steps"]
                if isinstance(step, dict) and "event" in step
            ]
        if "expect" in spec:
            case["expect"] = to_json_value(spec["expect"])
        out.append(case)
    return out


def _files(policy: CompiledPolicy, folder: Path, errors: list[Diagnostic]) -> list[dict[str, Any]]:
    if not folder.is_dir():
        return []
    found = [folder / f"{policy.id}.json", *sorted(folder.glob(f"{policy.id}.*.json"))]
    out = []
    for path in found:
        if not path.is_file():
            continue
        shown = f"{folder.name}/{path.name}"  # as the project names it, wherever it lies
        try:
            raw = path.read_bytes()
            if len(raw) > MAX_EXAMPLE_BYTES:
                raise ValueError(f"larger than {MAX_EXAMPLE_BYTES} bytes")
            value = orjson.loads(raw)
        except (OSError, ValueError) as exc:  # orjson's decode error is a ValueError
            errors.append(Diagnostic("example_invalid", str(exc), Location(shown, 1, 1)))
            continue
        kind = "event" if policy.kind == "flow" else "facts"
        out.append({"name": shown, kind: value})
    return out
