"""Mistakes policy editors make in YAML, each reported at the line and column where it is
made, with words that say how to fix it: a bad item of a `when` list, text after a closing
quote, a quote left open, full-width spaces for indentation, a number with '_', and the
end of an unquoted expression; the good form of each is still read and placed right."""

from __future__ import annotations

import pytest

from engine.compile.stages import compile_document
from engine.core.errors import Diagnostic, PolicyError
from engine.source.yaml import parse_yaml
from tests import FIXTURES

WHERE = str(FIXTURES / "bad" / "mistakes.yaml")
HEAD = [
    "kimari: 1",
    "id: mistakes",
    "title: {ja: 間違い, en: Mistakes}",
    "facts: schemas/order.facts.schema.json",
    "derived:",
    "  big:",
    "    value: order.total > 10",
    "rules:",
    "  - id: r1",
    "    refs: [TS-4]",
]  # the rule's `when` is line 11


def policy(*when: str) -> str:
    return "\n".join([*HEAD, *when]) + "\n"


def diagnostics(text: str) -> list[Diagnostic]:
    with pytest.raises(PolicyError) as caught:
        compile_document(parse_yaml(text, WHERE))
    return [d for d in caught.value.diagnostics if d.is_error]


def first(text: str) -> tuple[str, int, int, str]:
    found = diagnostics(text)[0]
    assert found.location is not None
    return found.code, found.location.line, found.location.col, found.message


def compiles(text: str) -> None:
    compile_document(parse_yaml(text, WHERE))


# 1. A `when` that is not an expression, a non-empty list of them, or true/false


def test_the_good_forms_of_when_compile() -> None:
    compiles(policy("    when:", "      - order.total > 3", "      - derived.big"))
    compiles(policy("    when: true"))
    compiles(policy("    when: order.total > 3"))


def test_a_condition_yaml_read_as_a_mapping_is_blamed_at_its_item_not_the_list() -> None:
    code, line, col, message = first(
        policy("    when:", "      - order.total > 3", "      - derived.big: null")
    )
    assert (code, line, col) == ("invalid_type", 13, 9)
    assert "'/rules/0/when/1'" in message and "mapping" in message
    assert "quote the whole expression" in message


def test_a_number_in_a_list_of_conditions_is_blamed_at_itself() -> None:
    code, line, col, message = first(policy("    when:", "      - order.total > 3", "      - 5"))
    assert (code, line, col) == ("invalid_type", 13, 9)
    assert "a condition must be a text expression, got number" in message


def test_every_bad_item_of_a_list_of_conditions_is_reported() -> None:
    found = diagnostics(policy("    when:", "      - 5", "      - order.total > 3", "      - true"))
    assert [(d.code, d.location.line if d.location else 0) for d in found] == [
        ("invalid_type", 12),
        ("invalid_type", 14),
    ]


def test_an_empty_list_of_conditions_says_so() -> None:
    code, line, col, message = first(policy("    when: []"))
    assert (code, line, col) == ("invalid_value", 11, 11)
    assert message == "'/rules/0/when': an empty list of conditions; give at least one, or true"


def test_an_empty_condition_says_so_as_a_whole_and_as_an_item() -> None:
    code, line, col, message = first(policy('    when: ""'))
    assert (code, line, col) == ("invalid_value", 11, 11)
    assert message == "'/rules/0/when': an empty condition; write an expression, or true"
    code, line, col, message = first(policy("    when:", "      - order.total > 3", "      - ''"))
    assert (code, line, col) == ("invalid_value", 13, 9)
    assert "an empty condition; write an expression, or remove it" in message


def test_a_condition_of_no_allowed_type_names_what_is_allowed() -> None:
    code, line, col, message = first(policy("    when: 5"))
    assert (code, line, col) == ("invalid_type", 11, 11)
    assert "a text expression, a list of them, or true/false; got number" in message


def test_other_choices_of_types_are_blamed_inside_the_branch_the_value_fits() -> None:
    flow = [
        "kimari: 1",
        "id: mistakes",
        "kind: flow",
        "title: {ja: 間違い}",
        "facts: schemas/order.facts.schema.json",
        "flow:",
        "  initial: open",
        "  states: {open: {label: {ja: 開}}, done: {label: {ja: 済}, final: true}}",
        "  events: {close: {label: {ja: 閉じる}}}",
        "  transitions:",
        "    - id: t1",
        "      refs: [TS-4]",
        "      from: [open, Not A Name]",
        "      event: close",
        "      to: done",
    ]
    found = [d for d in diagnostics("\n".join(flow) + "\n") if d.pointer.endswith("/from/1")]
    assert found and found[0].location is not None
    assert (found[0].location.line, found[0].location.col) == (13, 20)


# 2. Text after a closing quote


@pytest.mark.parametrize(
    ("line", "col", "fixed"),
    [
        ('      - "重複" == order.total', 14, """- '"重複" == order.total'"""),
        ('    when: "a" + 1', 15, """when: '"a" + 1'"""),
        ("    when: 'a' b", 15, "when: '''a'' b'"),
    ],
)
def test_text_after_a_closing_quote_says_to_quote_the_whole_value(
    line: str, col: int, fixed: str
) -> None:
    text = policy("    when:", line) if line.startswith("      -") else policy(line)
    code, at_line, at_col, message = first(text)
    assert (code, at_col) == ("yaml_syntax", col)
    assert at_line == (12 if line.startswith("      -") else 11)
    assert message.startswith("text cannot follow the closing quote of a value")
    assert fixed in message and "'>-'" in message


def test_text_after_a_closing_quote_in_braces_is_told_too() -> None:
    text = policy("    when: order.total > 3", '    label: {ja: "申請"の締め切り, en: x}')
    code, line, col, message = first(text)
    assert (code, line, col) == ("yaml_syntax", 12, 21)
    assert """'"申請"の締め切り'""" in message


def test_a_value_with_quotes_inside_quoted_whole_is_read() -> None:
    data = parse_yaml(policy("    when:", """      - '"重複" == x'"""), WHERE).data
    assert data["rules"][0]["when"] == ['"重複" == x']


# 3. A quote left open, full-width spaces


def test_a_quote_left_open_is_placed_at_the_quote_not_where_the_next_quote_closes_it() -> None:
    text = policy('    when: "order.total > 3', '    # a comment with a "quote" in it')
    text += "  - id: r2\n    refs: [TS-4]\n    when: order.total > 4\n"
    code, line, col, message = first(text)
    assert (code, line, col) == ("yaml_syntax", 11, 11)
    assert message.startswith("this quote is never closed on its line")
    assert "(line 12)" in message


def test_full_width_spaces_as_indentation_are_named_at_their_line() -> None:
    lines = [*HEAD, "    when: order.total > 3"]
    lines[5] = "\u3000\u3000big:"  # derived.big, indented with two full-width spaces
    code, line, col, message = first("\n".join(lines) + "\n")
    assert (code, line, col) == ("yaml_syntax", 6, 1)
    assert "U+3000" in message and "全角スペース" in message


def test_a_key_after_spaces_and_full_width_spaces_is_named_at_its_place() -> None:
    lines = [*HEAD, "    when: order.total > 3", "    \u3000label: {ja: ラベル}"]
    code, line, col, message = first("\n".join(lines) + "\n")
    assert (code, line, col) == ("yaml_syntax", 12, 5)
    assert "U+3000" in message


def test_a_full_width_space_inside_text_is_text() -> None:
    compiles(policy("    when: order.total > 3", "    label: {ja: 見積\u3000依頼}"))
    compiles(
        policy("    when: order.total > 3", "    label:", "      ja: |", "        \u3000字下げ")
    )


# 4. Numbers with '_'


@pytest.mark.parametrize(
    ("written", "number"),
    [("70_", "70"), ("7_0", "70"), ("1__0", "10"), ("-7_0", "-70"), ("1_000.5", "1000.5")],
)
def test_a_number_with_an_underscore_is_refused_at_its_place(written: str, number: str) -> None:
    code, line, col, message = first(f"kimari: 1\nid: mistakes\nlimit: {written}\n")
    assert (code, line, col) == ("yaml_ambiguous_scalar", 3, 8)
    assert f"without '_' ({number})" in message


@pytest.mark.parametrize(("written", "value"), [("70", 70), ("-7", -7), ("1000.5", "1000.5")])
def test_plain_numbers_are_still_read(written: str, value: object) -> None:
    data = parse_yaml(f"limit: {written}\nquoted: '7_0'\n", WHERE).data
    assert str(data["limit"]) == str(value) and data["quoted"] == "7_0"


# 5. The end of an unquoted expression


@pytest.mark.parametrize(
    ("written", "col"),
    [("order.total >", 24), ('"order.total > "', 26), ("order.total >  # why", 24)],
)
def test_an_error_at_the_end_of_an_expression_stays_on_its_line(written: str, col: int) -> None:
    code, line, at_col, _ = first(policy(f"    when: {written}", "    label: {ja: ラベル}"))
    assert (code, line, at_col) == ("expr_syntax", 11, col)


# 7. jsonschema's own words ("should be non-empty", "has non-unique elements") and patterns
# or descriptions in place of what to write


@pytest.mark.parametrize(
    ("lines", "says"),
    [
        (["    refs: []", "    when: derived.big"], "'/rules/1/refs' must not be empty"),
        (
            ["    refs: [TS-4, TS-4]", "    when: derived.big"],
            "'/rules/1/refs' lists 'TS-4' more than once",
        ),
        (
            ["    refs: [TS-4]", "    when: derived.big", "    label: {ja: ''}"],
            "'/rules/1/label/ja' must not be empty",
        ),
    ],
)
def test_sizes_and_repeats_are_said_in_kimaris_words(lines: list[str], says: str) -> None:
    text = (
        "\n".join(
            [*HEAD[:-2], "  - id: r0", "    refs: [TS-4]", "    when: true", "  - id: r1", *lines]
        )
        + "\n"
    )
    found = diagnostics(text)
    assert [(d.code, d.message) for d in found] == [("invalid_value", says)]


def test_a_reason_code_that_is_not_upper_case_is_told_how_to_write_it() -> None:
    text = policy(
        "    when: derived.big", "    reason: {code: deadline-passed, message: {ja: 期限}}"
    )
    [found] = diagnostics(text)
    assert (found.code, found.location and found.location.line) == ("invalid_value", 12)
    assert "UPPER_CASE" in (found.hint or "") and "DEADLINE_PASSED" in (found.hint or "")


@pytest.mark.parametrize(("written", "hint"), [('"1"', "without quotes"), ("2", "")])
def test_a_format_version_given_as_text_is_told_to_drop_the_quotes(written: str, hint: str) -> None:
    text = policy("    when: derived.big").replace("kimari: 1", f"kimari: {written}", 1)
    [found] = diagnostics(text)
    assert found.code == "invalid_value" and found.location and found.location.line == 1
    assert hint in (found.hint or "") and "did you mean" not in (found.hint or "")


# 8. What a quote's neighbour really is: a missing comma in [...] or {...}, and a value
# quoted over several lines and closed (legal YAML) before more text


@pytest.mark.parametrize(
    "line", ['    refs: ["TS-4" "TS-5"]', '    label: {ja: "x" en: y}', "    refs: ['TS-4' 'TS-5']"]
)
def test_a_missing_comma_after_a_quoted_item_is_told_as_a_missing_comma(line: str) -> None:
    """It was told to put the whole value in single quotes, which for {ja: "x" en: y} gave
    a policy that validates with a wrong Japanese label and no English one."""
    text = "\n".join([*HEAD[:-2], "  - id: r1", line, "    when: derived.big"]) + "\n"
    code, found_line, _, message = first(text)
    assert (code, found_line) == ("yaml_syntax", 10)
    assert "expected ','" in message and "single quotes" not in message


def test_a_value_quoted_over_lines_then_text_is_blamed_where_the_text_is() -> None:
    """It was told "never closed" at its opening line: closing it there breaks it again."""
    text = policy('    when: "order.total > 1', '      and order.total > 2" == derived.big')
    code, line, col, message = first(text)
    assert (code, line, col) == ("yaml_syntax", 12, 28)
    assert "opened at line 11" in message and "never closed" not in message


def test_an_item_listed_twice_is_named_as_json_compares_it() -> None:
    """true == 1 in Python: the repeated item of [1, true, 1] was named as true."""
    from engine.source.schema import _repeated

    assert _repeated([1, True, 1]) == 1 and _repeated([1, True, True]) is True
    assert _repeated([{"a": 1, "b": 2}, {"b": 2, "a": 1}]) == {"a": 1, "b": 2}


@pytest.mark.parametrize("written", ["true", "[1]"])
def test_a_format_version_of_another_kind_gets_no_quotes_hint(written: str) -> None:
    text = policy("    when: derived.big").replace("kimari: 1", f"kimari: {written}", 1)
    [found] = diagnostics(text)
    assert found.code == "invalid_value" and "quote" not in (found.hint or "")
