"""Read-only dicts and lists: shared JSON parts that read like plain ones and refuse change."""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.core.jsonvalue import dumps, to_json_value
from engine.core.readonly import ReadOnlyDict, ReadOnlyList, frozen

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=20,
)


@given(json_values)
def test_a_frozen_value_reads_and_writes_exactly_like_the_plain_one(value: Any) -> None:
    shared = frozen(value)
    assert shared == value
    assert dumps(shared) == dumps(value) == orjson.dumps(value)
    assert json.dumps(shared, ensure_ascii=False) == json.dumps(value, ensure_ascii=False)
    assert to_json_value(shared) == value
    assert pickle.loads(pickle.dumps(shared)) == value


CHANGES_OF_A_DICT = [
    lambda d: d.__setitem__("file", "x"),
    lambda d: d.__delitem__("file"),
    lambda d: d.update(line=1),
    lambda d: d.pop("file"),
    lambda d: d.popitem(),
    lambda d: d.setdefault("new", 1),
    lambda d: d.clear(),
    lambda d: d.__ior__({"line": 1}),
]


@pytest.mark.parametrize("change", CHANGES_OF_A_DICT)
def test_every_way_of_changing_a_read_only_dict_raises_and_leaves_it_whole(change: Any) -> None:
    shared = frozen({"file": "policies/order-holds.yaml", "line": 12, "col": 3})
    with pytest.raises(TypeError, match="cannot be changed"):
        change(shared)
    assert shared == {"file": "policies/order-holds.yaml", "line": 12, "col": 3}


CHANGES_OF_A_LIST = [
    lambda v: v.__setitem__(0, "x"),
    lambda v: v.__delitem__(0),
    lambda v: v.__iadd__(["x"]),
    lambda v: v.__imul__(2),
    lambda v: v.append("x"),
    lambda v: v.extend(["x"]),
    lambda v: v.insert(0, "x"),
    lambda v: v.pop(),
    lambda v: v.remove("HO-1"),
    lambda v: v.clear(),
    lambda v: v.sort(),
    lambda v: v.reverse(),
]


@pytest.mark.parametrize("change", CHANGES_OF_A_LIST)
def test_every_way_of_changing_a_read_only_list_raises_and_leaves_it_whole(change: Any) -> None:
    shared = frozen(["HO-2", "HO-1"])
    with pytest.raises(TypeError, match="cannot be changed"):
        change(shared)
    assert shared == ["HO-2", "HO-1"]


def test_a_copy_is_plain_and_changeable_and_the_original_stays() -> None:
    shared = frozen({"refs": ["HO-1"], "location": {"line": 1}})
    for made in (dict(shared), shared.copy(), copy.copy(shared)):
        assert type(made) is dict
        made["line"] = 2
    deep = copy.deepcopy(shared)
    assert type(deep) is dict and type(deep["refs"]) is list
    deep["refs"].append("HO-2")
    deep["location"]["line"] = 9
    assert shared == {"refs": ["HO-1"], "location": {"line": 1}}
    assert type(list(shared["refs"])) is list


def test_frozen_goes_all_the_way_down_and_keeps_order() -> None:
    shared = frozen({"b": [{"x": 1}, (2, 3)], "a": {"c": []}})
    assert list(shared) == ["b", "a"]
    assert isinstance(shared, ReadOnlyDict)
    assert isinstance(shared["b"], ReadOnlyList)
    assert isinstance(shared["b"][0], ReadOnlyDict)
    assert shared["b"][1] == [2, 3] and isinstance(shared["b"][1], ReadOnlyList)
    assert isinstance(shared["a"]["c"], ReadOnlyList)
