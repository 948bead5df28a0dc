"""A flow policy (`kind: flow`) is validated like every policy: every problem at once,
each at its file:line:col with a stable code and, for a name, a suggestion.

The shipped flows cite EX-6, FU-1..FU-8 and CX-1..CX-7; these tests use a small flow of
their own so that each mistake is alone on its line.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.core.errors import Diagnostic, PolicyError
from engine.flow.model import flow_of
from engine.lang.calendar import parse_datetime
from engine.lang.functions import FUNCTIONS
from engine.project.project import load_project
from tests import ROOT

ENTITY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "note": {"type": "string"},
        "count": {"type": "integer"},
        "items": {"type": "array", "items": {"type": "string"}},
        "level": {"type": "string", "enum": ["low", "high"]},
    },
}
GOOD = """\
kimari: 1
id: doors
kind: flow
title: {ja: 扉}
facts: doors.facts.schema.json
flow:
  initial: closed
  states:
    closed: {label: {ja: 閉}}
    open: {label: {ja: 開}}
    gone: {label: {ja: 撤去}, final: true}
  events:
    open: {label: {ja: 開ける}, fields: {note: {type: string}}}
    close: {label: {ja: 閉める}}
    remove: {label: {ja: 撤去する}}
  transitions:
    - id: open
      refs: [EX-6]
      from: closed
      event: open
      to: open
      set: {count: "= coalesce(entity.count, 0) + 1"}
      append: {items: = event.note}
    - id: close
      refs: [EX-6]
      from: open
      event: close
      to: closed
    - id: remove
      refs: [EX-6]
      from: "*"
      event: remove
      to: gone
"""


def project_with(tmp_path: Path, text: str, entity: object = ENTITY) -> Path:
    folder = tmp_path / "policies"
    folder.mkdir(parents=True)
    shutil.copy(ROOT / "policies" / "rulebook.tsv", folder / "rulebook.tsv")
    (folder / "doors.facts.schema.json").write_text(json.dumps(entity))
    (folder / "doors.yaml").write_text(text)
    return folder


def problems(tmp_path: Path, text: str, entity: object = ENTITY) -> list[Diagnostic]:
    with pytest.raises(PolicyError) as caught:
        load_project(project_with(tmp_path, text, entity))
    return caught.value.diagnostics


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


def test_a_good_flow_compiles_into_one_rule_per_transition(tmp_path: Path) -> None:
    policy = load_project(project_with(tmp_path, GOOD)).policy("doors")
    assert policy.kind == "flow" and policy.hit_policy == "first"
    assert [r.id for r in policy.rules] == ["open", "close", "remove"]
    flow = flow_of(policy)
    assert flow.transition_by_id["remove"].sources == ("closed", "open")  # '*' skips final
    assert flow.allowed_events("gone") == []


@pytest.mark.parametrize(
    ("old", "new", "code", "needle", "hint"),
    [
        ("      from: open\n", "      from: opened\n", "unknown_state", "from: opened", "'open'"),
        (
            "      event: close\n",
            "      event: closed\n",
            "unknown_event",
            "event: closed",
            "'close'",
        ),
        ("      to: closed\n", "      to: clsed\n", "unknown_state", "to: clsed", "'closed'"),
        ("set: {count:", "set: {cont:", "unknown_entity_fact", "set: {cont:", "'count'"),
        ("append: {items:", "append: {note:", "type_mismatch", "append: {note:", None),
        (
            "      to: open\n",
            "      to: open\n      requires: [nte]\n",
            "unknown_event_field",
            "requires: [nte]",
            "'note'",
        ),
        (
            "      to: closed\n",
            "      to: closed\n      when: event.nte == 'x'\n",
            "unknown_fact_field",
            "when: event.nte",
            "'event.note'",
        ),
        (
            "      to: closed\n",
            "      to: closed\n      when: state == 'opn'\n",
            "unknown_enum_value",
            "when: state == 'opn'",
            None,
        ),
    ],
)
def test_a_mistake_in_a_transition_is_reported_at_its_line_with_a_suggestion(
    tmp_path: Path, old: str, new: str, code: str, needle: str, hint: str | None
) -> None:
    text = GOOD.replace(old, new, 1)
    found = [d for d in problems(tmp_path, text) if d.code == code]
    assert found, f"no {code}"
    assert found[0].location is not None
    assert found[0].location.file.endswith("doors.yaml")
    assert found[0].location.line == line_of(text, needle)
    if hint:
        assert hint in (found[0].hint or "")


def test_a_mistake_in_one_transition_hides_neither_the_next_ones_nor_what_they_read(
    tmp_path: Path,
) -> None:
    """Every transition is checked whatever came before it: the first mistake used to stop
    the others, whose own mistakes went unreported and whose derived values were "unused"."""
    text = GOOD.replace("      refs: [EX-6]\n", "      refs: [EX-66]\n", 1)  # the first one
    text = text.replace(
        "flow:\n", "derived:\n  few: {value: 'coalesce(entity.count, 0) < 3'}\nflow:\n"
    )
    later = "      to: closed\n      when: derived.few and state == 'opn'\n"  # the second one
    text = text.replace("      to: closed\n", later, 1)
    found = problems(tmp_path, text)
    assert [(d.code, d.location.line if d.location else 0) for d in found] == [
        ("unknown_ref", line_of(text, "refs: [EX-66]")),
        ("unknown_enum_value", line_of(text, "when: derived.few")),
    ]  # and derived.few, read by the second, is not "declared but never used"


def test_a_final_state_can_be_neither_left_nor_initial(tmp_path: Path) -> None:
    leave = GOOD.replace("      from: open\n", "      from: gone\n")
    found = problems(tmp_path / "leave", leave)
    assert [d.code for d in found] == ["move_from_final_state"]
    assert found[0].location is not None
    assert found[0].location.line == line_of(leave, "from: gone")
    start = GOOD.replace("  initial: closed\n", "  initial: gone\n")
    assert [d.code for d in problems(tmp_path / "start", start)] == ["invalid_initial_state"]


def test_an_entity_schema_that_refuses_an_empty_entity_is_an_error(tmp_path: Path) -> None:
    entity = {**ENTITY, "required": ["note"]}
    found = problems(tmp_path, GOOD, entity)
    assert [d.code for d in found] == ["flow_entity_schema"]
    assert found[0].location is not None and found[0].location.line == line_of(GOOD, "facts:")


def test_rules_outcome_and_hit_policy_do_not_belong_in_a_flow(tmp_path: Path) -> None:
    text = GOOD.replace("kind: flow\n", "kind: flow\nhit_policy: collect\n")
    found = problems(tmp_path, text)
    assert [d.code for d in found] == ["not_in_flow"]
    assert found[0].location is not None and found[0].location.line == 4


def test_a_flow_without_its_flow_section_names_the_missing_key(tmp_path: Path) -> None:
    text = GOOD[: GOOD.index("flow:\n")]
    found = problems(tmp_path, text)
    assert [(d.code, d.message) for d in found] == [
        ("missing_key", "missing required key 'flow' in the document")
    ]


def test_an_event_field_named_type_is_an_error(tmp_path: Path) -> None:
    text = GOOD.replace(
        "    close: {label: {ja: 閉める}}\n",
        "    close: {label: {ja: 閉める}, fields: {type: {type: string}}}\n",
    )
    found = problems(tmp_path, text)
    assert [d.code for d in found] == ["reserved_event_field"]
    assert found[0].location is not None and found[0].location.line == line_of(text, "close:")


def test_a_bad_event_field_schema_is_reported_at_the_field(tmp_path: Path) -> None:
    text = GOOD.replace("fields: {note: {type: string}}", "fields: {note: {type: strng}}")
    found = problems(tmp_path, text)
    assert found and all(d.location is not None for d in found)
    assert {d.location.line for d in found if d.location} == {line_of(text, "type: strng")}
    assert {d.pointer for d in found} == {"/flow/events/open/fields/note/type"}


def test_a_field_shared_by_two_events_must_have_one_type(tmp_path: Path) -> None:
    text = GOOD.replace(
        "    close: {label: {ja: 閉める}}\n",
        "    close: {label: {ja: 閉める}, fields: {note: {type: integer}}}\n",
    )
    found = problems(tmp_path, text)
    assert [d.code for d in found] == ["event_field_conflict"]
    assert "event.note has one type" in found[0].message


def test_a_transition_shadowed_by_an_earlier_one_is_unreachable(tmp_path: Path) -> None:
    text = GOOD.replace(
        "    - id: close\n",
        "    - id: close-first\n      refs: [EX-6]\n      from: open\n      event: close\n"
        "      to: closed\n    - id: close\n",
    )
    found = problems(tmp_path, text)
    assert [d.code for d in found] == ["unreachable_rule"]
    assert "close-first" in found[0].message


def test_an_unused_event_and_an_unreachable_state_are_warnings(tmp_path: Path) -> None:
    text = GOOD.replace(
        "    remove: {label: {ja: 撤去する}}\n",
        "    remove: {label: {ja: 撤去する}}\n    paint: {label: {ja: 塗る}}\n",
    ).replace("    gone:", "    lost: {label: {ja: 紛失}}\n    gone:")
    project = load_project(project_with(tmp_path, text))
    assert {d.code for d in project.warnings} == {"unused_event", "unreachable_state"}


def test_a_decision_policy_needs_rules_and_has_no_flow_section(tmp_path: Path) -> None:
    text = GOOD.replace("kind: flow\n", "") + "rules:\n  - {id: r, refs: [EX-6], when: true}\n"
    found = problems(tmp_path, text)
    assert [d.code for d in found] == ["flow_in_decision"]
    assert found[0].location is not None and found[0].location.line == line_of(text, "flow:")
    no_rules = GOOD.replace("kind: flow\n", "")
    assert "missing_key" in {d.code for d in problems(tmp_path / "no-rules", no_rules)}


def test_minutes_between_counts_whole_minutes_elapsed() -> None:
    """FU-3 records the time to the first follow-up in minutes."""
    fn = FUNCTIONS["minutes_between"].impl
    start = parse_datetime("2024-05-01T09:00:00+09:00")
    assert fn(start, parse_datetime("2024-05-01T09:45:59+09:00")) == 45
    assert fn(start, parse_datetime("2024-05-01T00:00:00Z")) == 0  # 09:00 JST is 00:00 UTC
    assert fn(parse_datetime("2024-05-01T09:45:59+09:00"), start) == -45


def test_distinct_keeps_the_first_of_each_value_in_order() -> None:
    """CX-2 counts the distinct days of contact attempts: three calls in a day are one."""
    fn = FUNCTIONS["distinct"].impl
    assert fn(["b", "a", "b", None, "c"]) == ["b", "a", "c"]
    days = [parse_datetime(t) for t in ("2024-03-01T09:00:00+09:00", "2024-03-01T18:00:00+09:00")]
    assert fn(days, lambda d: d.date()) == [days[0].date()]


# -- roles (by:) and consulted decision policies ------------------------------------------

ROLES = """\
  roles:
    keeper: {label: {ja: 管理人, en: keeper}}
    guest: {label: {ja: 来客, en: guest}}
"""


def with_roles(text: str = GOOD) -> str:
    text = text.replace("  states:\n", ROLES + "  states:\n", 1)
    text = text.replace("{label: {ja: 開ける}, ", "{label: {ja: 開ける}, by: [guest, keeper], ")
    text = text.replace(
        "close: {label: {ja: 閉める}}", "close: {label: {ja: 閉める}, by: [keeper]}"
    )
    return text.replace(
        "remove: {label: {ja: 撤去する}}", "remove: {label: {ja: 撤去する}, by: [keeper]}"
    )


def test_roles_and_by_compile_into_the_roles_each_event_needs_in_each_state(
    tmp_path: Path,
) -> None:
    flow = flow_of(load_project(project_with(tmp_path, with_roles())).policy("doors"))
    assert list(flow.roles) == ["keeper", "guest"]
    assert flow.roles_for("closed", "open") == ("guest", "keeper")
    assert flow.roles_for("open", "close") == ("keeper",)
    assert flow.allowed_roles("open") == {"close": ["keeper"], "remove": ["keeper"]}


def test_a_role_that_is_not_declared_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    text = with_roles().replace("by: [keeper]}", "by: [keper]}", 1)
    found = [d for d in problems(tmp_path / "a", text) if d.code == "unknown_role"]
    assert found and found[0].hint == "did you mean 'keeper'?"
    assert found[0].location is not None and found[0].location.line == line_of(text, "keper")
    undeclared = GOOD.replace(
        "close: {label: {ja: 閉める}}", "close: {label: {ja: 閉める}, by: [keeper]}"
    )
    found = [d for d in problems(tmp_path / "b", undeclared) if d.code == "unknown_role"]
    assert found and "declares no roles" in found[0].message


def test_two_transitions_from_one_state_on_one_event_must_name_the_same_roles(
    tmp_path: Path,
) -> None:
    text = with_roles().replace(
        "    - id: close\n      refs: [EX-6]\n      from: open\n      event: close\n",
        "    - id: close-noted\n      refs: [EX-6]\n      from: open\n      event: close\n"
        "      by: [guest]\n      when: entity.note != null\n"
        "    - id: close\n      refs: [EX-6]\n      from: open\n      event: close\n",
    )
    found = [d for d in problems(tmp_path, text) if d.code == "roles_differ"]
    assert found and "one state and event take one set of roles" in found[0].message


def test_in_a_flow_with_roles_a_transition_anyone_may_make_is_a_warning(tmp_path: Path) -> None:
    text = with_roles().replace(
        "remove: {label: {ja: 撤去する}, by: [keeper]}", "remove: {label: {ja: 撤去する}}"
    )
    project = load_project(project_with(tmp_path, text))
    assert [w.code for w in project.warnings] == ["transition_without_roles"]


CONSULTING = GOOD.replace(
    "    remove: {label: {ja: 撤去する}}\n",
    "    remove: {label: {ja: 撤去する}}\n"
    "    inspect:\n"
    "      label: {ja: 点検}\n"
    "      fields: {facts: {type: object}}\n"
    "      decide: {policy: locks, facts: = event.facts, settings: '= {strict: true}'}\n",
).replace(
    "    - id: remove\n",
    "    - id: inspect\n      refs: [EX-6]\n      from: closed\n      event: inspect\n"
    "      to: open\n      when: event.decision.outcome.unlocked == true\n"
    "    - id: remove\n",
)
LOCKS = """\
kimari: 1
id: locks
title: {ja: 鍵}
facts: locks.facts.schema.json
settings:
  strict: {type: boolean, default: false}
outcome:
  unlocked: {type: boolean, default: false}
rules:
  - id: unlock
    refs: [EX-6]
    when: [lock.code == "1234", not settings.strict or lock.code != "0000"]
    then: {unlocked: true}
"""


def consulting_project(tmp_path: Path, flow: str = CONSULTING, locks: str | None = LOCKS) -> Path:
    folder = project_with(tmp_path, flow)
    if locks is not None:
        (folder / "locks.yaml").write_text(locks)
        schema = {
            "type": "object",
            "additionalProperties": False,
            "required": ["lock"],
            "properties": {
                "lock": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"code": {"type": "string"}},
                }
            },
        }
        (folder / "locks.facts.schema.json").write_text(json.dumps(schema))
    return folder


def test_an_event_that_consults_a_decision_policy_reads_its_typed_answer(tmp_path: Path) -> None:
    project = load_project(consulting_project(tmp_path))
    doors = project.policy("doors")
    call = flow_of(doors).events["inspect"].decide
    assert call is not None and call.policy == "locks"
    assert "locks.yaml" in doors.source.files  # the consulted file is part of the revision


def test_the_consulted_policys_outcome_types_check_the_guards(tmp_path: Path) -> None:
    text = CONSULTING.replace("outcome.unlocked == true", "outcome.unlockd == true")
    with pytest.raises(PolicyError) as caught:
        load_project(consulting_project(tmp_path, text))
    found = [d for d in caught.value.diagnostics if d.code == "unknown_fact_field"]
    assert found and "event.decision.outcome.unlocked" in (found[0].hint or "")


def test_a_consulted_policy_that_is_missing_not_a_decision_or_without_the_setting_is_named(
    tmp_path: Path,
) -> None:
    with pytest.raises(PolicyError) as missing:
        load_project(
            consulting_project(tmp_path / "a", CONSULTING.replace("policy: locks", "policy: lokcs"))
        )
    codes = {d.code: d for d in missing.value.diagnostics}
    assert "unknown_policy" in codes and codes["unknown_policy"].hint == "did you mean 'locks'?"
    with pytest.raises(PolicyError) as setting:
        load_project(
            consulting_project(
                tmp_path / "b", CONSULTING.replace("{strict: true}", "{strct: true}")
            )
        )
    found = [d for d in setting.value.diagnostics if d.code == "unknown_setting"]
    assert found and found[0].hint == "did you mean 'strict'?"
    with pytest.raises(PolicyError) as itself:
        load_project(
            consulting_project(tmp_path / "c", CONSULTING.replace("policy: locks", "policy: doors"))
        )
    assert "consult_invalid" in {d.code for d in itself.value.diagnostics}


def test_an_event_that_consults_cannot_declare_its_own_decision_field(tmp_path: Path) -> None:
    text = CONSULTING.replace(
        "fields: {facts: {type: object}}",
        "fields: {facts: {type: object}, decision: {type: string}}",
    )
    with pytest.raises(PolicyError) as caught:
        load_project(consulting_project(tmp_path, text))
    assert "reserved_event_field" in {d.code for d in caught.value.diagnostics}


def counting_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The consulted files parsed from now on (engine/source/yaml.py remembers documents
    by name and content)."""
    from engine.source import yaml as yaml_module

    yaml_module.forget_parsed()
    parsed: list[str] = []
    original = yaml_module._parse

    def counting(raw: bytes, file: str) -> object:
        if file == "locks.yaml":
            parsed.append(file)
        return original(raw, file)

    monkeypatch.setattr(yaml_module, "_parse", counting)
    return parsed


def test_a_consulted_policy_is_parsed_once_per_text_and_the_flow_compiles_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.source.yaml import forget_parsed

    folder = consulting_project(tmp_path)
    parsed = counting_parses(monkeypatch)
    first, again = load_project(folder).policy("doors"), load_project(folder).policy("doors")
    assert parsed == ["locks.yaml"]  # the flow's consult and the policy's own load share it
    forget_parsed()
    fresh = load_project(folder).policy("doors")
    assert parsed == ["locks.yaml", "locks.yaml"]
    assert first.revision == again.revision == fresh.revision
    assert first.source.files == again.source.files == fresh.source.files
    answers = [flow_of(p).events["inspect"].decide.answer.schema for p in (first, again, fresh)]
    assert answers[0] == answers[1] == answers[2]


def test_an_edited_consulted_policy_is_parsed_again_and_changes_the_flow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = consulting_project(tmp_path)
    parsed = counting_parses(monkeypatch)
    before = load_project(folder).policy("doors")
    edited = LOCKS.replace("outcome:\n", "outcome:\n  note: {type: string}\n")
    (folder / "locks.yaml").write_text(edited)
    after = load_project(folder).policy("doors")
    assert parsed == ["locks.yaml", "locks.yaml"]
    assert after.revision != before.revision
    outcome = flow_of(after).events["inspect"].decide.answer.schema["properties"]["outcome"]
    assert set(outcome["properties"]) == {"note", "unlocked"}
    (folder / "locks.yaml").write_text(LOCKS)  # the first text again: remembered
    assert load_project(folder).policy("doors").revision == before.revision
    assert parsed == ["locks.yaml", "locks.yaml"]


def test_a_consulted_policy_that_cannot_be_parsed_is_reported_at_every_compile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = consulting_project(tmp_path, locks="kimari: 1\nid: [locks\n")
    parsed = counting_parses(monkeypatch)
    for _ in range(2):
        with pytest.raises(PolicyError) as caught:
            load_project(folder)
        assert "consult_invalid" in {d.code for d in caught.value.diagnostics}
    assert parsed == ["locks.yaml", "locks.yaml"]
