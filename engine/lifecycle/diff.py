"""The semantic diff of two revisions of a policy: what an editor changed, in its own terms.

A text diff says that line 131 changed; this says that rule `fee-none`'s second condition
went from `<=` to `<`. Both revisions are read as YAML documents (with their facts
schemas), and compared section by section:

    policy      title, description, kind, hit policy, facts schema file
    rules       by id: added, removed, changed (condition, then, reason code, message,
                refs, priority, label, ...), and a change of their order (first-hit
                policies decide by it)
    settings, derived, outcome, data
                by name: added, removed, changed (default, type, bounds, expression, ...)
    facts       the facts schema's fields, flattened to paths (order.payment.method):
                added, removed, changed (type, required, enum, bounds)
    flow        initial state; roles, states, events and transitions (by id), as above

Each change is `{"field": "reason.code", "from": ..., "to": ...}` with JSON values. The
unified text diff of the policy and of every schema file that changed comes beside it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from engine.core.jsonvalue import dumps, to_json_value
from engine.lifecycle.candidates import Candidate
from engine.source.yaml import parse_yaml

POLICY_FIELDS = ("kind", "title", "description", "hit_policy", "facts", "source")
KEYED_SECTIONS = ("settings", "derived", "outcome", "data")
SCHEMA_NOISE = frozenset({"description", "title", "examples", "$comment", "$schema", "$id"})
MAX_SCHEMA_DEPTH = 12


def _document(candidate: Candidate | None) -> dict[str, Any]:
    if candidate is None:
        return {}
    data = parse_yaml(candidate.source.text, candidate.policy.path).data
    return to_json_value(data) if isinstance(data, dict) else {}


def _same(a: Any, b: Any) -> bool:
    # jsonvalue's dumps writes a YAML decimal (100.5) exactly; orjson's own refuses it
    return dumps(a, sort_keys=True) == dumps(b, sort_keys=True)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys (lists and scalars are leaves)."""
    if not isinstance(value, dict) or not value:
        return {prefix: value} if prefix else {}
    out: dict[str, Any] = {}
    for key, item in value.items():
        out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _normalise(kind: str, item: Any) -> Any:
    """Forms that mean the same written the same: a lone condition is a list of one."""
    if isinstance(item, dict) and kind in ("rules", "transitions") and "when" in item:
        when = item["when"]
        item = {**item, "when": when if isinstance(when, list) else [when]}
    return item


def field_changes(old: Any, new: Any) -> list[dict[str, Any]]:
    before, after = _flatten(old), _flatten(new)
    changes = []
    for key in [*before, *(k for k in after if k not in before)]:
        a, b = before.get(key), after.get(key)
        if not _same(a, b):
            changes.append({"field": key, "from": a, "to": b})
    return changes


def _keyed(kind: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any] | None:
    added = [{"id": k, "value": new[k]} for k in new if k not in old]
    removed = [{"id": k, "value": old[k]} for k in old if k not in new]
    changed = []
    for key in old:
        if key in new:
            fields = field_changes(_normalise(kind, old[key]), _normalise(kind, new[key]))
            if fields:
                changed.append({"id": key, "fields": fields})
    if not (added or removed or changed):
        return None
    return {"added": added, "removed": removed, "changed": changed}


def _listed(kind: str, old: list[Any], new: list[Any]) -> dict[str, Any] | None:
    """Items of a list with ids (rules, transitions), compared by id; order too."""
    before = {str(i.get("id")): i for i in old if isinstance(i, dict)}
    after = {str(i.get("id")): i for i in new if isinstance(i, dict)}
    out = _keyed(kind, before, after) or {"added": [], "removed": [], "changed": []}
    kept_before = [k for k in before if k in after]
    kept_after = [k for k in after if k in before]
    out["order"] = {"from": kept_before, "to": kept_after} if kept_before != kept_after else None
    if not (out["added"] or out["removed"] or out["changed"] or out["order"]):
        return None
    return out


def _resolve(schema: Any, root: Mapping[str, Any], depth: int) -> Any:
    seen = 0
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and seen < 8:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            break
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        seen += 1
    return schema


def schema_fields(schema: Any) -> dict[str, dict[str, Any]]:
    """Every field of a JSON Schema object as path -> its constraints (descriptions left out)."""
    out: dict[str, dict[str, Any]] = {}

    def walk(node: Any, path: str, required: bool, depth: int) -> None:
        node = _resolve(node, schema, depth)
        if not isinstance(node, dict) or depth > MAX_SCHEMA_DEPTH:
            return
        if path:
            out[path] = {
                **{
                    k: v
                    for k, v in node.items()
                    if k not in SCHEMA_NOISE
                    and k not in ("properties", "items", "$defs")
                    and k != "required"
                },
                "required": required,
            }
        needed = set(node.get("required", []))
        for name, sub in (node.get("properties") or {}).items():
            walk(sub, f"{path}.{name}" if path else name, name in needed, depth + 1)
        items = node.get("items")
        if isinstance(items, dict):
            walk(items, f"{path}[]", True, depth + 1)

    walk(schema, "", True, 0)
    return out


def _facts_schema(candidate: Candidate | None, document: Mapping[str, Any]) -> Any:
    if candidate is None:
        return {}
    name = document.get("facts")
    raw = candidate.source.files.get(name) if isinstance(name, str) else None
    if raw is None:
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}


def _facts(old: Any, new: Any) -> dict[str, Any] | None:
    before, after = schema_fields(old), schema_fields(new)
    added = [{"field": k, **after[k]} for k in after if k not in before]
    removed = [{"field": k, **before[k]} for k in before if k not in after]
    changed = [
        {"field": k, "changes": field_changes(before[k], after[k])}
        for k in before
        if k in after and not _same(before[k], after[k])
    ]
    if not (added or removed or changed):
        return None
    return {"added": added, "removed": removed, "changed": changed}


def _flow(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any] | None:
    if not old and not new:
        return None
    out: dict[str, Any] = {}
    if not _same(old.get("initial"), new.get("initial")):
        out["initial"] = {"from": old.get("initial"), "to": new.get("initial")}
    for section in ("roles", "states", "events"):
        found = _keyed(section, old.get(section) or {}, new.get(section) or {})
        if found:
            out[section] = found
    transitions = _listed("transitions", old.get("transitions") or [], new.get("transitions") or [])
    if transitions:
        out["transitions"] = transitions
    return out or None


def text_diff(old: Candidate | None, new: Candidate | None) -> str:
    """The unified diff of the policy text and of each schema file that differs."""
    parts: list[str] = []
    parts.extend(
        _unified(
            old.source.text if old else "",
            new.source.text if new else "",
            _header(old),
            _header(new),
        )
    )
    old_files = dict(old.source.files) if old else {}
    new_files = dict(new.source.files) if new else {}
    for name in [*old_files, *(n for n in new_files if n not in old_files)]:
        a, b = old_files.get(name, b""), new_files.get(name, b"")
        if a != b:
            parts.extend(_unified(_text(a), _text(b), name, name))
    return "".join(parts)


def _header(candidate: Candidate | None) -> str:
    if candidate is None:
        return "/dev/null"
    path = candidate.policy.path
    return path if candidate.label == path else f"{path} ({candidate.label})"


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _unified(a: str, b: str, name_a: str, name_b: str) -> Iterator[str]:
    for line in difflib.unified_diff(
        a.splitlines(keepends=True), b.splitlines(keepends=True), name_a, name_b, n=2
    ):
        yield line if line.endswith("\n") else line + "\n"


def side(candidate: Candidate | None) -> dict[str, Any] | None:
    if candidate is None:
        return None
    record = candidate.record
    return {
        "label": candidate.label,
        "revision": candidate.revision,
        "number": record.number if record else None,
        "state": record.state if record else None,
        "path": candidate.policy.path,
    }


def diff(old: Candidate | None, new: Candidate | None) -> dict[str, Any]:
    """The semantic diff of `old` -> `new` (either may be None: nothing)."""
    a, b = _document(old), _document(new)
    changes: dict[str, Any] = {}
    policy = [
        {"field": name, "from": a.get(name), "to": b.get(name)}
        for name in POLICY_FIELDS
        if not _same(a.get(name), b.get(name))
    ]
    if policy:
        changes["policy"] = policy
    rules = _listed("rules", a.get("rules") or [], b.get("rules") or [])
    if rules:
        changes["rules"] = rules
    for section in KEYED_SECTIONS:
        found = _keyed(section, a.get(section) or {}, b.get(section) or {})
        if found:
            changes[section] = found
    facts = _facts(_facts_schema(old, a), _facts_schema(new, b))
    if facts:
        changes["facts"] = facts
    flow = _flow(a.get("flow") or {}, b.get("flow") or {})
    if flow:
        changes["flow"] = flow
    policy_id = (new or old).id if (new or old) else None
    data_from = old.data_versions if old else {}
    data_to = new.data_versions if new else {}
    if data_from != data_to:
        changes["data_versions"] = {"from": data_from, "to": data_to}
    text = text_diff(old, new)
    return {
        "policy": policy_id,
        "from": side(old),
        "to": side(new),
        "identical": not changes and not text,
        "changes": changes,
        "text": text,
    }
