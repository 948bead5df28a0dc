"""Request envelopes: one parser and one checker for decisions, batch items, flow events and
imports, each refusing with the codes and JSON pointers its API has always used."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.i18n import using_language
from engine.service.envelopes import (
    DECISION_REQUEST,
    EVENT_REQUEST,
    IMPORT_REQUEST,
    Envelope,
    parse_body,
)
from engine.service.problems import RequestProblem


def refused(envelope: Envelope, body: bytes) -> tuple[int, dict[str, Any]]:
    with pytest.raises(RequestProblem) as caught:
        envelope.read(body)
    status, _, raw = caught.value.response
    return status, orjson.loads(raw)


def found(envelope: Envelope, value: Any, prefix: str = "") -> list[tuple[str, str | None]]:
    return [(d.code, d.pointer) for d in envelope.check(value, prefix)]


@pytest.mark.parametrize(
    ("body", "code"), [(b"", "body_missing"), (b"{", "json_invalid"), (b"[1,", "json_invalid")]
)
def test_a_missing_or_malformed_body_is_a_400(body: bytes, code: str) -> None:
    with pytest.raises(RequestProblem) as caught:
        parse_body(body)
    status, _, raw = caught.value.response
    assert (status, orjson.loads(raw)["code"]) == (400, code)


def test_a_body_nested_past_64_is_a_400_with_the_pointer_of_the_first_value_past_it() -> None:
    def body(depth: int) -> bytes:  # the body's object is 1, facts 2, order 3
        return b'{"facts": {"order": ' + b"[" * (depth - 2) + b"]" * (depth - 2) + b"}}"

    assert parse_body(body(64))["facts"]["order"]
    for depth in (65, 300, 1_000):  # 255-1024 once failed while writing the value again (500)
        with pytest.raises(RequestProblem) as caught:
            parse_body(body(depth))
        status, _, raw = caught.value.response
        answer = orjson.loads(raw)
        assert (status, answer["code"]) == (400, "json_too_deep")
        assert answer["errors"][0]["pointer"] == "/facts/order" + "/0" * 62


def test_a_body_past_the_json_parsers_own_depth_is_a_400_too() -> None:
    with pytest.raises(RequestProblem) as caught:
        parse_body(b'{"facts": ' + b"[" * 2_000 + b"]" * 2_000 + b"}")
    status, _, raw = caught.value.response
    answer = orjson.loads(raw)
    assert (status, answer["code"]) == (400, "json_too_deep")
    assert "line 1 column" in answer["errors"][0]["message"]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b'{"a": "\xff"}', "byte 0xff at line 1 column 8"),
        ('{"facts":\n {"name": "café"}}'.encode("latin-1"), "byte 0xe9 at line 2 column 15"),
        (
            '{"名前": "\xe9"}'.encode().replace(b"\xc3\xa9", b"\xe9"),
            "byte 0xe9 at line 1 column 9",
        ),  # columns count characters
    ],
)
def test_a_body_that_is_not_utf_8_is_refused_at_its_first_bad_byte(body: bytes, where: str) -> None:
    with pytest.raises(RequestProblem) as caught:
        parse_body(body)
    status, _, raw = caught.value.response
    answer = orjson.loads(raw)
    assert (status, answer["code"]) == (400, "json_invalid")
    assert answer["detail"] == f"malformed JSON: not UTF-8: {where}"


def test_a_decision_request_names_each_wrong_key_with_its_pointer() -> None:
    request = {"fact": {}, "at": 5, "settings": [], "decision_id": "no spaces"}
    assert found(DECISION_REQUEST, request) == [
        ("unknown_field", "/fact"),
        ("missing_field", "/facts"),
        ("at_invalid", "/at"),
        ("settings_invalid", "/settings"),
        ("decision_id_invalid", "/decision_id"),
    ]
    assert DECISION_REQUEST.check({"fact": {}})[0].hint == "did you mean 'facts'?"


def test_null_counts_as_absent_and_a_good_request_has_no_problem() -> None:
    good = {"facts": {}, "at": None, "settings": None, "decision_id": "a.b:c-1_2"}
    assert found(DECISION_REQUEST, good) == []


def test_a_batch_item_is_checked_as_a_decision_request_under_its_own_pointer() -> None:
    assert found(DECISION_REQUEST, {"at": "x"}, "/items/3") == [("missing_field", "/items/3/facts")]
    assert found(DECISION_REQUEST, [], "/items/0") == [("request_invalid", "/items/0")]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"facts": {"x": 1}, "extra": 1}', "unknown_field"),  # alone: named by it
        (b'{"at": "2024-01-01"}', "facts_invalid"),  # every error under /facts
        # a key beside the facts is not in them: with a missing facts, two kinds of problem
        (b'{"facts_x": 1}', "request_invalid"),
        (b'{"facts": {}, "facts_x": 1}', "unknown_field"),
        (b'{"extra": 1}', "request_invalid"),  # several kinds
        (b"[]", "request_invalid"),
    ],
)
def test_a_decision_envelope_problem_is_named_by_its_diagnostics(body: bytes, code: str) -> None:
    status, problem = refused(DECISION_REQUEST, body)
    assert (status, problem["code"]) == (422, code)


@pytest.mark.parametrize("envelope", [EVENT_REQUEST, IMPORT_REQUEST])
def test_flow_envelope_problems_are_named_as_a_decisions_are(envelope: Envelope) -> None:
    """Several problems: request_invalid, each diagnostic with the decision's codes; a body
    that is no object: request_invalid, as a decision's (the flow bodies said `required`
    and `type_mismatch`, unlike every other body of the API)."""
    required = {name for name, key in envelope.keys.items() if key.required}
    status, problem = refused(envelope, b'{"evnt": {}}')
    assert (status, problem["code"]) == (422, "request_invalid")
    codes = {(e["code"], e["pointer"]) for e in problem["errors"]}
    assert codes == {("unknown_field", "/evnt")} | {("missing_field", f"/{r}") for r in required}
    status, problem = refused(envelope, b'"text"')
    assert (status, problem["code"], problem["errors"][0]["code"]) == (
        422,
        "request_invalid",
        "request_invalid",
    )


@pytest.mark.parametrize(
    ("envelope", "body", "code", "pointer"),
    [
        (
            EVENT_REQUEST,
            b'{"event": {"type": "x"}, "actor": {}, "evnt_id": "x"}',
            "unknown_field",
            "/evnt_id",
        ),
        (
            EVENT_REQUEST,
            b'{"event": {"type": "x"}, "actor": {}, "settings": []}',
            "settings_invalid",
            "/settings",
        ),
        (EVENT_REQUEST, b'{"event": {"type": "x"}}', "missing_field", "/actor"),
        (IMPORT_REQUEST, b'{"state": "open", "fact": {}}', "unknown_field", "/fact"),
        (IMPORT_REQUEST, b'{"facts": {}}', "missing_field", "/state"),
        (DECISION_REQUEST, b'{"facts": {}, "settings": []}', "settings_invalid", "/settings"),
    ],
)
def test_a_lone_envelope_problem_is_answered_with_its_own_code_on_every_body(
    envelope: Envelope, body: bytes, code: str, pointer: str
) -> None:
    """docs/service.md: a lone envelope problem answers with its own code, as /v1/decisions
    always did; the flow event and import bodies answered request_invalid."""
    status, problem = refused(envelope, body)
    assert (status, problem["code"]) == (422, code)
    assert [(e["code"], e["pointer"]) for e in problem["errors"]] == [(code, pointer)]
    if code == "unknown_field" and envelope is EVENT_REQUEST:
        assert problem["errors"][0]["hint"] == "did you mean 'event_id'?"


def test_a_flow_event_leaves_at_the_values_of_settings_and_the_actor_to_the_flow_engine() -> None:
    body = b'{"event": {"type": "x"}, "actor": 1, "at": 5, "settings": {"x": []}}'
    assert EVENT_REQUEST.read(body)["at"] == 5  # the actor's shape: engine/flow/actors.py


@pytest.mark.parametrize("settings", ["[]", "[null, null]", '"x"', "5", "true"])
def test_flow_settings_that_are_no_object_are_refused_with_their_pointer(settings: str) -> None:
    body = b'{"event": {"type": "x"}, "actor": {}, "settings": ' + settings.encode() + b"}"
    status, problem = refused(EVENT_REQUEST, body)
    assert (status, problem["code"]) == (422, "settings_invalid")
    assert [(e["code"], e["pointer"]) for e in problem["errors"]] == [
        ("settings_invalid", "/settings")
    ]


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        (b'{"facts": {}, "facts": {}}', "/facts"),
        (b'{"facts": {"order": {"total": 1, "total": 2}}}', "/facts/order/total"),
        (b'{"items": [{"facts": {}}, {"facts": {"a": 1, "a": 1}}]}', "/items/1/facts/a"),
        (b'{"a" : 1, "a" : 2}', "/a"),
        (b'{"a/b~": 1, "a/b~": 2}', "/a~1b~0"),
        (b'{"a": "\\u0022:", "a": "\\u0022:"}', "/a"),
    ],
)
def test_a_key_held_twice_is_refused_with_its_pointer(body: bytes, pointer: str) -> None:
    with pytest.raises(RequestProblem) as caught:
        parse_body(body)
    status, _, raw = caught.value.response
    problem = orjson.loads(raw)
    assert (status, problem["code"]) == (400, "duplicate_key")
    assert [(e["code"], e["pointer"]) for e in problem["errors"]] == [("duplicate_key", pointer)]


KEYS = st.sampled_from(["a", "b", "a b", 'q"', "x:", "日本"])
LEAVES = st.none() | st.integers() | st.sampled_from(["", '":', "10:00", "\\", 'a" :'])


@st.composite
def json_text(draw: st.DrawFn, depth: int = 0) -> str:
    """An object written as JSON text with its keys as drawn (maybe twice), in varied styles."""
    spaces = draw(st.sampled_from(["", " ", "\n  "]))
    members = []
    for key in draw(st.lists(KEYS, max_size=4)):
        if depth < 2 and draw(st.booleans()):
            value = draw(json_text(depth + 1))
        else:
            value = json.dumps(draw(LEAVES), ensure_ascii=draw(st.booleans()))
        before = draw(st.sampled_from(["", "", " "]))  # space before the colon, now and then
        members.append(
            f"{json.dumps(key, ensure_ascii=draw(st.booleans()))}{before}:{spaces}{value}"
        )
    return "{" + f",{spaces}".join(members) + "}"


def _has_duplicate(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise KeyError(keys)
    return dict(pairs)


@settings(max_examples=300, deadline=None)
@given(text=json_text())
def test_a_body_is_refused_for_a_duplicate_key_exactly_when_it_has_one(text: str) -> None:
    try:
        json.loads(text, object_pairs_hook=_has_duplicate)
        duplicated = False
    except KeyError:
        duplicated = True
    if duplicated:
        with pytest.raises(RequestProblem):
            parse_body(text.encode())
    else:
        assert parse_body(text.encode()) == json.loads(text)


@pytest.mark.parametrize("body", [b"1e400", b" -1E400", b"1" + b"0" * 400])
def test_a_body_that_is_a_number_past_a_float_is_read_and_refused_as_no_object(
    body: bytes,
) -> None:
    status, answer = refused(DECISION_REQUEST, body)
    assert status == 422
    assert [(e["code"], e["pointer"]) for e in answer["errors"]] == [("request_invalid", "")]


@pytest.mark.parametrize(
    ("body", "english", "japanese"),
    [
        (
            b'{"facts": {"order": {"id": "O-1",}}}',
            "a key in double quotes was expected here (no comma after the last member) "
            "(line 1 column 34)",
            "（1 行 34 列）",
        ),
        (b'{"facts": ', "a value was expected here (line 1 column 11)", "（1 行 11 列）"),
        (b'{"a": NaN}', "a value JSON does not have", "JSON にない値です"),
    ],
)
def test_a_body_that_is_not_json_is_told_in_the_readers_language(
    body: bytes, english: str, japanese: str
) -> None:
    """orjson's own reasons ("trailing comma is not allowed") stayed English in a Japanese
    answer, at a column one before the console's and the CLI's."""
    with pytest.raises(RequestProblem) as caught:
        parse_body(body)
    assert english in orjson.loads(caught.value.response[2])["detail"]
    with using_language("ja"), pytest.raises(RequestProblem) as caught:
        parse_body(body)
    assert japanese in orjson.loads(caught.value.response[2])["detail"]


@pytest.mark.parametrize(
    "number",
    ["1e5000", "1e1000000", "-1E+100000", "1e9999999999999999999", "1e-9999999999999999999"],
)
def test_a_number_past_any_range_is_out_of_range_at_its_pointer_not_malformed_json(
    number: str,
) -> None:
    """1e5000 was `json_invalid` naming a Python type ("decimal.Decimal is not JSON
    serializable"), after int() wrote its digits (0.4 s a number at 1e100000: a body of
    them cost a worker its life); 1e9999999999999999999 was a 500 (Decimal's
    InvalidOperation, an ArithmeticError no one caught)."""
    body = b'{"facts": {"cancellation": {"reward": ' + number.encode() + b"}}}"
    try:
        value = parse_body(body)
    except RequestProblem as caught:
        status, _, raw = caught.response
        answer = orjson.loads(raw)
        assert (status, answer["errors"][0]["code"]) == (422, "out_of_range")
        assert answer["errors"][0]["pointer"] == "/facts/cancellation/reward"
        return
    reward = value["facts"]["cancellation"]["reward"]  # read exactly, for the validator
    assert isinstance(reward, Decimal) and str(reward) == str(Decimal(number))


BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize(
    ("envelope", "body"),
    [
        (DECISION_REQUEST, b'{"facts": {"n": 1}}'),
        (EVENT_REQUEST, b'{"event": {"type": "x"}, "actor": {}}'),
        (IMPORT_REQUEST, b'{"state": "open"}'),
    ],
)
def test_a_body_that_starts_with_a_byte_order_mark_is_read_past_it(
    envelope: Envelope, body: bytes
) -> None:
    """Windows tools write one; `kimari decide` and `kimari batch` read past it, and the
    service answered json_invalid, with the reason of a value JSON does not have."""
    assert envelope.read(BOM + body) == envelope.read(body)
    assert parse_body(BOM + b'\r\n{"a": [1, 2.5]}') == {"a": [1, Decimal("2.5")]}


@pytest.mark.parametrize(
    ("body", "code", "detail"),
    [
        (BOM + b'{"a": }', "json_invalid", "malformed JSON: a value was expected here"),
        (BOM + b'{\n "a": 1,\n}', "json_invalid", "(line 3 column 1)"),  # after the mark
        (BOM + BOM + b"{}", "json_invalid", "malformed JSON: a second byte order mark"),
        (BOM, "body_missing", "the request needs a JSON body"),
        (BOM + b'{"a": 1, "a": 2}', "duplicate_key", "the body holds a key twice"),
    ],
)
def test_what_follows_a_byte_order_mark_is_refused_as_any_body_and_with_the_right_reason(
    body: bytes, code: str, detail: str
) -> None:
    with pytest.raises(RequestProblem) as caught:
        parse_body(body)
    status, _, raw = caught.value.response
    answer = orjson.loads(raw)
    assert (status, answer["code"]) == (400, code)
    assert detail in answer["detail"] and "NaN" not in answer["detail"]


def test_a_byte_order_mark_inside_a_text_is_the_texts() -> None:
    assert parse_body(b'{"a": "' + BOM + b'x"}') == {"a": "\ufeffx"}
