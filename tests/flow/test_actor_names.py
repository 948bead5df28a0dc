"""An actor's id and roles are names: a blank at either end is refused, so that " " is no
actor and "op-1 " is not a second person beside "op-1" for the four-eyes guards (CX-5: the
case's own approver acts; FU-5, FU-6: a manager who did not request it)."""

from __future__ import annotations

from typing import Any

import pytest

from engine.core.errors import InputError
from engine.flow.actors import validate_actor


@pytest.mark.parametrize(
    ("actor", "pointer"),
    [
        ({"id": " ", "roles": ["担当者"]}, "/actor/id"),
        ({"id": "op-1 ", "roles": ["担当者"]}, "/actor/id"),
        ({"id": " op-1", "roles": ["担当者"]}, "/actor/id"),
        ({"id": "op-1\t", "roles": ["担当者"]}, "/actor/id"),
        ({"id": "op-1", "roles": ["担当者 "]}, "/actor/roles/0"),
        ({"id": "op-1", "roles": ["経企", " "]}, "/actor/roles/1"),
    ],
)
def test_an_id_or_role_with_a_blank_at_either_end_is_refused_at_its_pointer(
    actor: dict[str, Any], pointer: str
) -> None:
    with pytest.raises(InputError) as caught:
        validate_actor(actor)
    [problem] = caught.value.diagnostics
    assert (problem.code, problem.pointer) == ("actor_invalid", pointer)
    assert "blank at either end" in str(problem.message)


@pytest.mark.parametrize(
    "actor",
    [
        {"id": "op-1", "roles": ["担当者"]},
        {"id": "op 1", "roles": ["案件決裁者"], "name": "受任担当 佐藤"},  # blanks inside
        {
            "id": "佐藤",
            "roles": ["担当者", "経企"],
            "name": " 佐藤 ",
        },  # a name is shown, not compared
    ],
)
def test_names_with_blanks_only_inside_are_taken_as_given(actor: dict[str, Any]) -> None:
    taken = validate_actor(actor)
    assert (taken.id, list(taken.roles), taken.name) == (
        actor["id"],
        actor["roles"],
        actor.get("name"),
    )
