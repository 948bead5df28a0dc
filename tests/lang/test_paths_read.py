"""paths_read: which fields below a path an expression reads (the outcome fields of a
consulted decision a flow needs in every answer)."""

from __future__ import annotations

import pytest

from engine.lang.ast import EVERY, paths_read
from engine.lang.parser import parse

OUTCOME = ("event", "decision", "outcome")


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ("event.decision.outcome.held == true", {"held"}),
        ("event.decision.outcome.a and not event.decision.outcome.b", {"a", "b"}),
        ("coalesce(event.decision.outcome.effects, [])", {"effects"}),
        ("event.decision.outcome", {EVERY}),  # read whole: every field
        ("event.decision", {EVERY}),
        ("event", {EVERY}),
        ("event.decision.reasons", set()),  # beside the outcome
        ("map(event.decision.reasons, r -> r.code)", set()),
        ("event.detail", set()),
        ("derived.held", set()),
        ("map([1], event -> event.decision.outcome.x)", set()),  # the lambda's own `event`
    ],
)
def test_the_fields_read_below_a_path(text: str, read: set[str]) -> None:
    assert paths_read(parse(text), OUTCOME) == read
