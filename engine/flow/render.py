"""Text renderings of flow results and histories, for people at a terminal.

Every line is shown in the language in effect (KIMARI_LANG, engine/cli/main.py); the
policy's own texts (labels, refusal and action texts) are its Japanese, whatever the
language, as in the JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.core.i18n import Msg, translate
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
    meta = "  " + translate(
        Msg(
            "by {actor}, revision {revision}, decision {decision}, at {at}, entity version "
            "{version}",
            actor=actor_text(body.get("actor")),
            revision=policy["revision"],
            decision=body["decision_id"],
            at=body["at"],
            version=entity["version"],
        )
    )
    if not body["allowed"]:
        refusal = body["refusal"]
        out = [
            translate(
                Msg(
                    "{head}: refused in {state}: {code}",
                    head=head,
                    state=_state(refusal["state"]),
                    code=refusal["code"],
                )
            ),
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
                out.append("      " + translate(Msg("with {values}", values=values)))
        if refusal.get("pointer"):
            out.append("  " + translate(Msg("missing: {pointer}", pointer=refusal["pointer"])))
        allowed = ", ".join(refusal.get("allowed_events") or []) or Msg("none")
        out.append("  " + translate(Msg("allowed events here: {events}", events=allowed)))
        return "\n".join(out)
    transition = body["transition"] or {}
    refs = ", ".join(transition.get("refs", []))
    line = Msg(
        "{head}: {before} -> {after} by {transition}",
        head=head,
        before=_state(body["state"]["before"]),
        after=_state(body["state"]["after"]),
        transition=f"{transition.get('id')} [{refs}]" if refs else str(transition.get("id")),
    )
    if body.get("replayed"):
        line = Msg("{move} (replayed: this event id was applied before)", move=line)
    out = [translate(line), meta]
    if body.get("message"):
        out.append(f"  {body['message']['ja']}")
    if body["actions"]:
        out.append("  " + translate(Msg("actions:")))
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
    fields = {
        "entity": f"{entity['policy']['id']} {head['id']}",
        "state": _state(entity["state"]),
        "version": head["version"],
    }
    out = [
        translate(
            Msg("{entity}: {state}, version {version}", **fields)
            if head["exists"]
            else Msg("{entity}: {state}, version {version} (no event yet)", **fields)
        )
    ]
    for row in rows:
        if row.imported:
            imported = Msg(
                "{version}  {at}  imported into {state} by {principal} rev {revision}",
                version=str(row.version).rjust(4),
                at=row.at,
                state=row.to_state,
                principal=row.principal or "-",
                revision=row.revision,
            )
            out.append("  " + translate(imported))
            continue
        move = Msg(
            "{version}  {at}  {event} {before} -> {after}  [{transition}] by {actor} rev "
            "{revision}",
            version=str(row.version).rjust(4),
            at=row.at,
            event=row.event_type.ljust(24),
            before=row.from_state,
            after=row.to_state,
            transition=row.transition,
            actor=actor_text(row.actor),
            revision=row.revision,
        )
        out.append("  " + translate(move))
        for action in row.actions:
            said = Msg("action {code}: {text}", code=action["code"], text=action["text"]["ja"])
            out.append("          " + translate(said))
    if refusals:
        out.append(translate(Msg("refused events (not part of the history of moves):")))
        for item in refusals:
            refused = Msg(
                "at version {version}  {at}  {event} by {actor} {code}: {message}",
                version=item["version"],
                at=item["at"],
                event=item["event_type"].ljust(24),
                actor=actor_text(item.get("actor")),
                code=item["code"],
                message=item["refusal"]["message"]["ja"],
            )
            out.append("  " + translate(refused))
    return "\n".join(out)
