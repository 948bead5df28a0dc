"""Text renderings of flow results and histories, for people at a terminal."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.core.jsonvalue import dumps
from engine.store.flows import HistoryRow


def _state(view: Mapping[str, Any]) -> str:
    label = view.get("label", {}).get("ja")
    return f"{label} ({view['id']})" if label else str(view["id"])


def _value(value: Any) -> str:
    return value if isinstance(value, str) else dumps(value).decode()


def actor_text(actor: Mapping[str, Any] | None) -> str:
    """Who sent an event: name (id) [roles]; '-' for a move stored before actors."""
    if not actor:
        return "-"
    who = f"{actor['name']} ({actor['id']})" if actor.get("name") else str(actor["id"])
    return f"{who} [{', '.join(actor.get('roles', []))}]"


def flow_result_text(body: Mapping[str, Any]) -> str:
    """One event's answer: the move and what it requires, or the refusal and why."""
    policy, entity = body["policy"], body["entity"]
    head = f"{policy['id']} {entity['id']}"
    meta = (
        f"  by {actor_text(body.get('actor'))}, revision {policy['revision']}, decision "
        f"{body['decision_id']}, at {body['at']}, entity version {entity['version']}"
    )
    if not body["allowed"]:
        refusal = body["refusal"]
        out = [
            f"{head}: refused in {_state(refusal['state'])}: {refusal['code']}",
            meta,
            f"  {refusal['message']['ja']}",
        ]
        if "en" in refusal["message"]:
            out.append(f"  {refusal['message']['en']}")
        for failed in refusal.get("failed", []):
            loc = failed["location"]
            values = ", ".join(f"{k} = {_value(v)}" for k, v in failed["values"].items())
            out.append(
                f"  ✗ {failed['transition']}: {failed['condition']}    "
                f"{loc['file']}:{loc['line']}:{loc['col']}"
            )
            if values:
                out.append(f"      with {values}")
        if refusal.get("pointer"):
            out.append(f"  missing: {refusal['pointer']}")
        allowed = refusal.get("allowed_events") or []
        out.append(f"  allowed events here: {', '.join(allowed) or 'none'}")
        return "\n".join(out)
    transition = body["transition"] or {}
    refs = ", ".join(transition.get("refs", []))
    replayed = " (replayed: this event id was applied before)" if body.get("replayed") else ""
    out = [
        f"{head}: {_state(body['state']['before'])} -> {_state(body['state']['after'])} "
        f"by {transition.get('id')}{f' [{refs}]' if refs else ''}{replayed}",
        meta,
    ]
    if body.get("message"):
        out.append(f"  {body['message']['ja']}")
    if body["actions"]:
        out.append("  actions:")
        for action in body["actions"]:
            to = f" -> {', '.join(action['to'])}" if action.get("to") else ""
            out.append(f"    - {action['code']}{to}: {action['text']['ja']}")
    for kind in ("set", "append"):
        for name, value in (body.get("recorded") or {}).get(kind, {}).items():
            sign = "=" if kind == "set" else "+="
            out.append(f"  {name} {sign} {_value(value)}")
    return "\n".join(out)


def history_text(entity: Mapping[str, Any], rows: list[HistoryRow], refusals: list[Any]) -> str:
    head = entity["entity"]
    out = [
        f"{entity['policy']['id']} {head['id']}: {_state(entity['state'])}, version "
        f"{head['version']}{'' if head['exists'] else ' (no event yet)'}",
    ]
    for row in rows:
        out.append(
            f"  {row.version:>4}  {row.at}  {row.event_type:<24} {row.from_state} -> "
            f"{row.to_state}  [{row.transition}] by {actor_text(row.actor)} rev {row.revision}"
        )
        for action in row.actions:
            out.append(f"          action {action['code']}: {action['text']['ja']}")
    if refusals:
        out.append("refused events (not part of the history of moves):")
        for item in refusals:
            out.append(
                f"  at version {item['version']}  {item['at']}  {item['event_type']:<24} "
                f"by {actor_text(item.get('actor'))} "
                f"{item['code']}: {item['refusal']['message']['ja']}"
            )
    return "\n".join(out)
