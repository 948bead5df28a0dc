"""engine/source/jsonplaces.py: a JSON pointer back to its line and column in the text."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.jsonvalue import walk
from engine.source.jsonplaces import JsonPlaces

TEXT = """\
{
  "type": "object",
  "properties": {
    "a~b/c": {"type": "integr"},
    "名前": {"enum": ["x", "y"], "maxLength": 3},
    "q\\"uote": {}
  },
  "required": []
}
"""


def at(places: JsonPlaces, pointer: str, *, key: bool = False) -> tuple[int, int]:
    where = places.key(pointer) if key else places.value(pointer)
    return where.line, where.col


def test_values_and_keys_are_placed_at_their_first_character() -> None:
    places = JsonPlaces("s.json", TEXT)
    assert at(places, "") == (1, 1)
    assert at(places, "/type") == (2, 11)
    assert at(places, "/type", key=True) == (2, 3)
    assert at(places, "/properties/a~0b~1c/type") == (4, 23)  # pointer escapes read back
    assert at(places, "/properties/a~0b~1c", key=True) == (4, 5)
    assert at(places, "/required") == (8, 15)


def test_columns_count_characters_and_keys_are_read_with_their_escapes() -> None:
    places = JsonPlaces("s.json", TEXT)
    assert at(places, "/properties/名前/maxLength") == (5, 45)  # 名前 is 2 columns, not 6 bytes
    assert at(places, "/properties/名前/enum/1") == (5, 26)
    assert at(places, '/properties/q"uote', key=True) == (6, 5)


def test_a_pointer_that_is_not_in_the_text_is_placed_at_its_nearest_ancestor() -> None:
    places = JsonPlaces("s.json", TEXT)
    assert at(places, "/properties/名前/minLength") == at(places, "/properties/名前")
    assert at(places, "/properties/none/type", key=True) == at(places, "/properties")
    assert at(places, "/required/0") == (8, 15)  # an empty array has no items


def test_an_item_has_no_key_and_is_placed_at_its_value() -> None:
    places = JsonPlaces("s.json", '[1, {"a": [true, null]}]')
    assert at(places, "/1/a/1", key=True) == at(places, "/1/a/1") == (1, 18)


def test_line_breaks_of_any_kind_count_as_lines_and_a_text_that_is_not_json_still_places() -> None:
    assert at(JsonPlaces("s.json", '{\r\n "a":\r\n  -1.5e3}'), "/a") == (3, 3)
    broken = JsonPlaces("s.json", '{"a": 1, "b": ]')
    assert at(broken, "/a") == (1, 7)
    assert at(broken, "/b/c") == (1, 15)  # the fault itself, nothing after it
    assert at(JsonPlaces("s.json", "[" * 5000 + "]" * 5000), "/0/0") == (1, 3)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(JSON, st.sampled_from([None, 0, 2]), st.booleans())
def test_every_pointer_is_placed_where_its_value_is_written(
    value: Any, indent: int | None, ascii_only: bool
) -> None:
    text = json.dumps(value, indent=indent, ensure_ascii=ascii_only)
    places = JsonPlaces("s.json", text)
    lines = text.split("\n")
    for pointer, inner, _depth in walk(value):
        where = places.value(pointer)
        rest = "\n".join(lines[where.line - 1 :])[where.col - 1 :]
        assert json.JSONDecoder().raw_decode(rest)[0] == inner
