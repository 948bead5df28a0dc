"""A message template renders its texts with each hole's value formatted in its place."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from engine.compile.model import Template
from engine.core.jsonvalue import format_value

JST = dt.timezone(dt.timedelta(hours=9))
VALUES = st.sampled_from(
    [
        *(None, True, False, 0, 12000, Decimal("0.5"), "", "山田", [1, "a"], {"a": 1}),
        *(dt.date(2024, 10, 1), dt.datetime(2024, 10, 1, 9, 30, tzinfo=JST)),
    ]
)
TEXTS = st.text(max_size=5)


def hole(name: str) -> Any:
    """A stand-in for a compiled expression: Template reads only its `fn`."""
    return SimpleNamespace(fn=lambda env: env[name])


@given(st.lists(st.one_of(TEXTS, VALUES.map(lambda v: ("hole", v))), max_size=6))
def test_a_template_renders_its_texts_and_each_holes_value_in_order(pieces: list[Any]) -> None:
    env = {f"v{i}": p[1] for i, p in enumerate(pieces) if isinstance(p, tuple)}
    parts = tuple(hole(f"v{i}") if isinstance(p, tuple) else p for i, p in enumerate(pieces))
    expected = "".join(format_value(p[1]) if isinstance(p, tuple) else p for p in pieces)
    template = Template("(source)", parts)
    assert template.render(env, format_value) == expected
    # rendered again for other values: each render starts from the layout, not the last text
    other = dict.fromkeys(env, "x")
    again = "".join("x" if isinstance(p, tuple) else p for p in pieces)
    assert template.render(other, format_value) == again


def test_a_template_renders_each_decisions_own_values() -> None:
    template = Template("{a} / {b}", (hole("a"), " / ", hole("b")))
    assert template.render({"a": 1, "b": "x"}, format_value) == "1 / x"
    assert (
        template.render({"a": None, "b": Decimal("2.5")}, format_value)
        == format_value(None) + " / 2.5"
    )
