"""Who sends an event: the actor, and the roles a flow lets send each event.

An event of a flow is sent by an actor, `{"id": "u-17", "roles": ["販売店"], "name": "..."}`.
A flow declares its roles (`flow.roles`) and each transition the roles that may make it
(`by:`, or its event's `by:` as the default):

    event from an actor ──validate_actor──> Actor (InputError with a pointer under /actor)
    state + event type ──FlowSpec.roles_for──> the roles that may send it here (None: anyone)
    actor.roles ∩ those roles empty ──> refused, `role_not_allowed`, nothing stored

Who may send an event in a state is a property of the flow, not of the guards: every
transition that leaves one state on one event names the same roles (the compiler checks
it), so the role check needs no guard evaluated and explains itself by naming the roles.
Who the actor is (its id) is for the guards: "the approver is not the requester" is
`actor.id != entity.request.requested_by`, a one-line guard (four-eyes).

The roles an actor may claim at all are the caller's to vouch for: over HTTP, the token's
configured roles (engine/service/flows.py); kimari only checks that the claim fits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.core.errors import Diagnostic, InputError
from engine.core.i18n import Msg

MAX_ID = 200
MAX_NAME = 200
MAX_ROLES = 32
ANY_ROLE = "*"  # a token configured with this role may claim any role
ACTOR_KEYS = ("id", "roles", "name")


@dataclass(frozen=True)
class Actor:
    id: str
    roles: tuple[str, ...]
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "roles": list(self.roles)}
        if self.name is not None:
            out["name"] = self.name
        return out

    def shown(self) -> str:
        """How people read the actor: name (id) [roles]."""
        who = f"{self.name} ({self.id})" if self.name else self.id
        return f"{who} [{', '.join(self.roles)}]"

    def may(self, roles: Iterable[str] | None) -> bool:
        """Whether the actor holds one of `roles` (None: anyone may)."""
        return roles is None or not set(roles).isdisjoint(self.roles)


def _text(value: Any, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit and value.isprintable()


def _name(value: Any, limit: int) -> bool:
    """An id or a role: a printable text without a blank at either end (" " was an actor,
    and "op-1 " another person than "op-1" to the four-eyes guards)."""
    return _text(value, limit) and value == value.strip()


def validate_actor(value: Any, pointer: str = "/actor") -> Actor:
    """The actor of an event, or InputError naming what is wrong (JSON pointers)."""
    if value is None:
        raise InputError(
            [
                Diagnostic(
                    "actor_required",
                    Msg('every flow event needs its actor: {{"id": "...", "roles": ["..."]}}'),
                    pointer=pointer,
                )
            ]
        )
    if isinstance(value, Actor):
        return value
    if not isinstance(value, dict):
        raise InputError(
            [Diagnostic("actor_invalid", Msg("the actor must be a JSON object"), pointer=pointer)]
        )
    problems = [
        Diagnostic(
            "actor_invalid", Msg("unknown actor field '{name}'", name=k), pointer=f"{pointer}/{k}"
        )
        for k in value
        if k not in ACTOR_KEYS
    ]
    if not _name(value.get("id"), MAX_ID):
        problems.append(
            Diagnostic(
                "actor_invalid",
                Msg(
                    "the actor's id is 1 to {limit} printable characters, with no blank at "
                    "either end",
                    limit=MAX_ID,
                ),
                pointer=f"{pointer}/id",
            )
        )
    roles = value.get("roles")
    if not isinstance(roles, list) or not 0 < len(roles) <= MAX_ROLES:
        problems.append(
            Diagnostic(
                "actor_invalid",
                Msg("the actor's roles are a list of 1 to {limit} role names", limit=MAX_ROLES),
                pointer=f"{pointer}/roles",
            )
        )
        roles = []
    for i, role in enumerate(roles):
        if not _name(role, MAX_ID) or role == ANY_ROLE or role in roles[:i]:
            problems.append(
                Diagnostic(
                    "actor_invalid",
                    Msg(
                        "a role is a printable text with no blank at either end, given once "
                        "('*' is no role)"
                    ),
                    pointer=f"{pointer}/roles/{i}",
                )
            )
    if "name" in value and not _text(value["name"], MAX_NAME):
        problems.append(
            Diagnostic(
                "actor_invalid",
                Msg("the actor's name is 1 to {limit} printable characters", limit=MAX_NAME),
                pointer=f"{pointer}/name",
            )
        )
    if problems:
        raise InputError(problems)
    return Actor(value["id"], tuple(roles), value.get("name"))


def roles_beyond(actor: Actor, allowed: Iterable[str]) -> list[str]:
    """The actor's roles that a caller allowed only `allowed` may not claim."""
    permitted = set(allowed)
    if ANY_ROLE in permitted:
        return []
    return [role for role in actor.roles if role not in permitted]


def role_labels(roles: Iterable[str], labels: Mapping[str, Any]) -> tuple[str, str]:
    """(ja, en) lists of role names for messages: 「販売店」、「オートックワン」 / 'dealer', ..."""
    names = list(roles)
    ja = "、".join(f"「{getattr(labels.get(r), 'ja', r)}」" for r in names)
    en = ", ".join(f"'{getattr(labels.get(r), 'en', None) or r}'" for r in names)
    return ja, en


def example_actor(by: Iterable[str] | None, fallback: Iterable[str] = ()) -> dict[str, Any]:
    """An actor for documentation examples: one holding the first role that may send the
    event (or the flow's first role)."""
    roles = list(by or ()) or list(fallback)[:1]
    return {"id": "example-user", "roles": roles[:1] or ["anyone"]}
