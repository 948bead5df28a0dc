"""Policy ids as generated clients see them.

The OpenAPI document names each policy's schemas and operations after its id in
CamelCase (`order-holds` -> `OrderHoldsDecision`, `decideOrderHolds`), and client
generators make class and function names of those, most of them by dropping every
character that is neither a letter nor a digit. Two ids that differ only in hyphens
(`fees-2024` and `fees2024`) would then give one class for two policies, and a client
would silently read one policy's answer as the other's. Such a pair is refused: the
policy served first keeps being served; the other is not, with the error at its `id:`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping

from engine.compile.model import CompiledPolicy
from engine.core.errors import Diagnostic, Location
from engine.core.i18n import Msg

_ID_LINE = re.compile(r"^id:[ \t]", re.MULTILINE)


def client_key(policy_id: str) -> str:
    """What is left of an id once a generator has dropped all but letters and digits."""
    return re.sub(r"[^a-z0-9]", "", policy_id.lower())


def name_clashes(
    policies: Mapping[str, CompiledPolicy | None], served: Collection[str] = ()
) -> dict[str, Diagnostic]:
    """The policies to refuse, each with its diagnostic: of two ids with one client key,
    the one in `served` (served before) is kept, else the first in id order."""
    kept: dict[str, str] = {}
    clashes: dict[str, Diagnostic] = {}
    for pid in sorted(policies, key=lambda p: (p not in served, p)):
        policy = policies[pid]
        if policy is None:
            continue
        other = kept.setdefault(client_key(pid), pid)
        if other != pid:
            clashes[pid] = clash(policy, other)
    return clashes


def clash_with(policy: CompiledPolicy, others: Iterable[str]) -> Diagnostic | None:
    """The diagnostic of a new policy whose id clashes with one of `others`, if any."""
    key = client_key(policy.id)
    for other in sorted(others):
        if other != policy.id and client_key(other) == key:
            return clash(policy, other)
    return None


def clash(policy: CompiledPolicy, other: str) -> Diagnostic:
    return Diagnostic(
        "client_name_clash",
        Msg(
            "policy ids '{id}' and '{other}' differ only in hyphens: clients generated "
            "from the API would get one name for both; rename one of them",
            id=policy.id,
            other=other,
        ),
        _id_location(policy),
        pointer="/id",
    )


def _id_location(policy: CompiledPolicy) -> Location:
    text = policy.source.text if policy.source is not None else ""
    found = _ID_LINE.search(text)
    line = text.count("\n", 0, found.start()) + 1 if found else 1
    return Location(policy.path, line, 5 if found else 1)


__all__ = ["clash_with", "client_key", "name_clashes"]
