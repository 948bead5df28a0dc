"""Flows in Japanese: every diagnostic the flow compiler writes, the flow engine's input
errors, the engine-written sentences of refusals, and the flow test runner's failures.

Codes, places (file:line:col) and JSON pointers are the same in both languages; only the
words change (docs/messages.md). A refusal's message is {ja, en} whatever the language in
effect: its engine-written sentence comes from the catalogue in both languages, followed by
the policy's own texts; the expected texts here are, byte for byte, what the engine wrote
before the sentences moved into the catalogue.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.core.errors import Diagnostic, InputError, KimariError, PolicyError, UsageError
from engine.core.i18n import Msg, translate, using_language
from engine.flow.decide import decide_move, initial_entity
from engine.flow.engine import FlowEngine, replay
from engine.flow.model import flow_of
from engine.project.project import load_project
from engine.store.flows import EntityState, FlowStore
from engine.store.sqlite import MEMORY
from engine.testing.tester import run_tests
from tests import ROOT
from tests.compile.test_bad_policies_ja import JAPANESE, assert_translated
from tests.flow.test_compile import (
    CONSULTING,
    ENTITY,
    GOOD,
    LOCKS,
    consulting_project,
    project_with,
    with_roles,
)

# -- the compiler: one mistake of each kind --------------------------------------------


def _replaced(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def _roles_differ() -> str:
    return _replaced(
        with_roles(),
        "    - id: close\n      refs: [EX-6]\n      from: open\n      event: close\n",
        "    - id: close-noted\n      refs: [EX-6]\n      from: open\n      event: close\n"
        "      by: [guest]\n      when: entity.note != null\n"
        "    - id: close\n      refs: [EX-6]\n      from: open\n      event: close\n",
    )


# name -> (flow text, entity schema, the consulted policy's text or None for none at all)
Mistake = tuple[str, Any, str | None]
MISTAKES: dict[str, Callable[[], Mistake]] = {
    "rules in a flow": lambda: (
        _replaced(GOOD, "kind: flow\n", "kind: flow\nhit_policy: collect\n"),
        ENTITY,
        None,
    ),
    "an entity schema without properties": lambda: (GOOD, {"type": "object"}, None),
    "an entity schema refusing {}": lambda: (GOOD, {**ENTITY, "required": ["note"]}, None),
    "a role in a flow without roles": lambda: (
        _replaced(GOOD, "close: {label: {ja: 閉める}}", "close: {label: {ja: 閉める}, by: [x]}"),
        ENTITY,
        None,
    ),
    "an undeclared role": lambda: (
        _replaced(with_roles(), "by: [keeper]}", "by: [keper]}"),
        ENTITY,
        None,
    ),
    "an unknown initial state": lambda: (
        _replaced(GOOD, "  initial: closed\n", "  initial: closd\n"),
        ENTITY,
        None,
    ),
    "a final initial state": lambda: (
        _replaced(GOOD, "  initial: closed\n", "  initial: gone\n"),
        ENTITY,
        None,
    ),
    "an event field named type": lambda: (
        _replaced(
            GOOD,
            "close: {label: {ja: 閉める}}",
            "close: {label: {ja: 閉める}, fields: {type: {type: string}}}",
        ),
        ENTITY,
        None,
    ),
    "an event field named decision": lambda: (
        _replaced(
            CONSULTING,
            "fields: {facts: {type: object}}",
            "fields: {facts: {type: object}, decision: {type: string}}",
        ),
        ENTITY,
        LOCKS,
    ),
    "a required field the event lacks": lambda: (
        _replaced(
            GOOD,
            "fields: {note: {type: string}}}",
            "fields: {note: {type: string}}, required: [nte]}",
        ),
        ENTITY,
        None,
    ),
    "requires a field the event lacks": lambda: (
        _replaced(GOOD, "      to: open\n", "      to: open\n      requires: [nte]\n"),
        ENTITY,
        None,
    ),
    "one field with two types": lambda: (
        _replaced(
            GOOD,
            "close: {label: {ja: 閉める}}",
            "close: {label: {ja: 閉める}, fields: {note: {type: integer}}}",
        ),
        ENTITY,
        None,
    ),
    "a transition id used twice": lambda: (
        _replaced(GOOD, "    - id: close\n", "    - id: open\n"),
        ENTITY,
        None,
    ),
    "an unknown event": lambda: (
        _replaced(GOOD, "      event: close\n", "      event: closed\n"),
        ENTITY,
        None,
    ),
    "an unknown target state": lambda: (
        _replaced(GOOD, "      to: closed\n", "      to: clsed\n"),
        ENTITY,
        None,
    ),
    "an unknown source state": lambda: (
        _replaced(GOOD, "      from: open\n", "      from: opened\n"),
        ENTITY,
        None,
    ),
    "a move from a final state": lambda: (
        _replaced(GOOD, "      from: open\n", "      from: gone\n"),
        ENTITY,
        None,
    ),
    "an unknown entity fact": lambda: (
        _replaced(GOOD, "set: {count:", "set: {cont:"),
        ENTITY,
        None,
    ),
    "append to a text": lambda: (
        _replaced(GOOD, "append: {items:", "append: {note:"),
        ENTITY,
        None,
    ),
    "a value outside the enum": lambda: (
        _replaced(GOOD, "set: {count:", "set: {level: hgh, count:"),
        ENTITY,
        None,
    ),
    "a transition anyone may make": lambda: (
        _replaced(
            with_roles(),
            "remove: {label: {ja: 撤去する}, by: [keeper]}",
            "remove: {label: {ja: 撤去する}}",
        ),
        ENTITY,
        None,
    ),
    "two sets of roles for one state and event": lambda: (_roles_differ(), ENTITY, None),
    "an unused event and an unreachable state": lambda: (
        _replaced(
            _replaced(
                GOOD,
                "    remove: {label: {ja: 撤去する}}\n",
                "    remove: {label: {ja: 撤去する}}\n    paint: {label: {ja: 塗る}}\n",
            ),
            "    gone:",
            "    lost: {label: {ja: 紛失}}\n    gone:",
        ),
        ENTITY,
        None,
    ),
    "a flow consulting itself": lambda: (
        _replaced(CONSULTING, "policy: locks", "policy: doors"),
        ENTITY,
        LOCKS,
    ),
    "a consulted flow": lambda: (CONSULTING, ENTITY, LOCKS.replace("title:", "kind: flow\ntitle:")),
    "a consulted policy that cannot be read": lambda: (CONSULTING, ENTITY, "id: [locks\n"),
    "a consulted policy that is missing": lambda: (
        _replaced(CONSULTING, "policy: locks", "policy: lokcs"),
        ENTITY,
        LOCKS,
    ),
    "a setting the consulted policy lacks": lambda: (
        _replaced(CONSULTING, "{strict: true}", "{strct: true}"),
        ENTITY,
        LOCKS,
    ),
    "consulted facts that are no expression": lambda: (
        _replaced(CONSULTING, "facts: = event.facts", "facts: event.facts"),
        ENTITY,
        LOCKS,
    ),
    "consulted facts that are no record": lambda: (
        _replaced(CONSULTING, "facts: = event.facts", "facts: = 1"),
        ENTITY,
        LOCKS,
    ),
}


# A value that does not match a pattern of the policy schema gets the pattern's description
# as its hint: text of schemas/policy.schema.json (docs/messages.md), not of the engine.
SCHEMA_DESCRIPTIONS = set(
    re.findall(r'"description": "([^"]*)"', (ROOT / "schemas" / "policy.schema.json").read_text())
)


def diagnostics_of(folder: Path, mistake: Mistake) -> list[Diagnostic]:
    """The errors of a flow with `mistake`, else its warnings."""
    text, entity, consulted = mistake
    folder = project_with(folder, text, entity)
    if consulted is not None:
        shutil.rmtree(folder)
        folder = consulting_project(folder.parent, text, consulted)
        (folder / "doors.facts.schema.json").write_text(json.dumps(entity))
    try:
        return load_project(folder).warnings
    except PolicyError as exc:
        return exc.diagnostics


@pytest.fixture(scope="module")
def found(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Diagnostic]]:
    tmp = tmp_path_factory.mktemp("mistakes")
    return {
        name: diagnostics_of(tmp / str(i), make())
        for i, (name, make) in enumerate(MISTAKES.items())
    }


@pytest.mark.parametrize("name", list(MISTAKES))
def test_every_diagnostic_of_a_flow_mistake_reads_in_japanese(
    found: dict[str, list[Diagnostic]], name: str
) -> None:
    assert found[name], f"no diagnostic for {name}"
    for diagnostic in found[name]:
        assert_translated(diagnostic.message)
        if diagnostic.hint not in SCHEMA_DESCRIPTIONS:  # the schema's words, as it has them
            assert_translated(diagnostic.hint)
        english, japanese = diagnostic.render("en"), diagnostic.render("ja")
        where = str(diagnostic.location) if diagnostic.location else diagnostic.pointer or ""
        assert english.startswith(where) and japanese.startswith(where)
        assert f" {diagnostic.code}: " in japanese  # the code is kept


def _codes_written_by(module: Path) -> set[str]:
    """The codes `build.error` / `build.warn` write in a module: a literal first argument."""
    codes = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", None) in ("error", "warn")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            codes.add(node.args[0].value)
    return codes


def test_the_mistakes_cover_every_code_the_flow_compiler_writes(
    found: dict[str, list[Diagnostic]],
) -> None:
    written = _codes_written_by(ROOT / "engine" / "flow" / "compile.py")
    written |= _codes_written_by(ROOT / "engine" / "flow" / "consult.py")
    seen = {d.code for diagnostics in found.values() for d in diagnostics}
    assert len(written) >= 20
    assert written <= seen, sorted(written - seen)


def test_a_flow_mistake_reads_exactly_so_in_japanese(found: dict[str, list[Diagnostic]]) -> None:
    (role,) = [d for d in found["an undeclared role"] if d.code == "unknown_role"]
    assert role.render("ja").endswith(
        "unknown_role: 役割 'keper' は flow.roles に宣言されていません ('keeper' のことですか?)"
    )
    (final,) = found["a final initial state"]
    assert final.render("ja").endswith(
        "invalid_initial_state: 初期状態 'gone' が最終状態です。エンティティが一度も遷移できません"
    )
    assert final.render("en").endswith(
        "invalid_initial_state: initial state 'gone' is final: an entity could never move"
    )


# -- the engine: input errors ----------------------------------------------------------

DOORS = ROOT / "tests" / "fixtures" / "flows" / "doors"
GUEST = {"id": "g-1", "roles": ["guest"]}
KEEPER = {"id": "k-1", "roles": ["keeper"]}
AT = "2024-09-20T10:00:00+09:00"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[FlowEngine]:
    """The doors flow of tests/fixtures/flows (roles, a note, an abolished state, texts in
    both languages) beside a decision policy (locks)."""
    folder = consulting_project(tmp_path)  # doors (replaced below) and the locks decision
    for path in DOORS.iterdir():
        shutil.copy(path, folder / path.name)
    store = FlowStore(MEMORY)
    try:
        yield FlowEngine(load_project(folder), store)
    finally:
        store.close()


def _error(call: Callable[[], object]) -> KimariError:
    with pytest.raises(KimariError) as caught:
        call()
    return caught.value


@pytest.mark.parametrize(
    ("event", "actor", "codes"),
    [
        ({"type": "open"}, None, ["actor_required"]),
        ({"type": "open"}, "g-1", ["actor_invalid"]),
        (
            {"type": "open"},
            {"id": "", "roles": [], "name": "", "team": "x"},
            ["actor_invalid"] * 4,
        ),
        ({"type": "open"}, {"id": "g-1", "roles": ["*", "*"]}, ["actor_invalid"] * 2),
        ("open", GUEST, ["event_invalid"]),
        ({}, GUEST, ["unknown_event"]),
        ({"type": "opn"}, GUEST, ["unknown_event"]),
        ({"type": "open", "note": 7}, GUEST, ["type_mismatch"]),
    ],
)
def test_an_invalid_event_or_actor_reads_in_japanese_at_the_same_pointer(
    engine: FlowEngine, event: Any, actor: Any, codes: list[str]
) -> None:
    exc = _error(lambda: engine.apply("doors", "D-1", event, actor=actor, at=AT))
    assert isinstance(exc, InputError)
    assert [d.code for d in exc.diagnostics] == codes
    for diagnostic in exc.diagnostics:
        assert diagnostic.pointer and diagnostic.pointer.startswith(("/event", "/actor"))
        assert_translated(diagnostic.message)
        assert_translated(diagnostic.hint)
        assert diagnostic.to_dict("ja")["pointer"] == diagnostic.to_dict("en")["pointer"]


def test_the_engines_other_refusals_of_a_request_read_in_japanese(engine: FlowEngine) -> None:
    problems = [
        _error(lambda: engine.apply("doors", "", {"type": "open"}, actor=GUEST)),
        _error(lambda: engine.apply("locks", "D-1", {"type": "open"}, actor=GUEST)),
        _error(lambda: engine.import_entity("doors", "D-2", "ajar", {})),
        _error(lambda: engine.import_entity("doors", "D-2", None, {})),
        _error(lambda: engine.import_entity("doors", "D-2", "broken", {})),  # abolished
    ]
    engine.import_entity("doors", "D-3", "open", {"count": 1})
    problems.append(_error(lambda: engine.import_entity("doors", "D-3", "open", {})))
    assert [p.code for p in problems] == [
        "entity_id_invalid",
        "not_a_flow",
        "unknown_state",
        "unknown_state",
        "abolished_state",
        "entity_exists",
    ]
    assert isinstance(problems[1], UsageError)
    assert [str(p.diagnostics[0].message) for p in problems[2:4]] == [
        "'ajar' is not a state of 'doors'",
        "null is not a state of 'doors'",  # a JSON value, never Python's None
    ]
    abolished = problems[4].diagnostics[0]  # imported where no move may lead: refused too
    assert abolished.pointer == "/state"
    assert translate(abolished.hint, "ja") == "故障は使わなくなりました。"
    assert translate(abolished.hint, "en") == "Broken is no longer used."
    for problem in problems:
        for diagnostic in problem.diagnostics:
            assert_translated(diagnostic.message)
    assert translate(problems[5].diagnostics[0].message, "ja") == (
        "'doors' のエンティティ 'D-3' はすでにあります。取り込めるのは新しいエンティティだけです"
    )


def test_a_stored_entity_the_revision_cannot_read_is_explained_in_japanese(
    engine: FlowEngine,
) -> None:
    policy = engine.policy("doors")
    for stored, code in (
        (EntityState("ajar", {}, 1), "stored_state_unknown"),
        (EntityState("open", {"count": "two"}, 1), "stored_facts_invalid"),
    ):
        exc = _error(lambda s=stored: decide_move(policy, s, {"type": "remove"}, actor=KEEPER))
        assert exc.code == code
        assert_translated(exc.diagnostics[0].message)
        assert JAPANESE.search(translate(exc.diagnostics[0].message, "ja"))


# -- the engine: refusals --------------------------------------------------------------

# (event, actor, code, ja, en): the doors fixture from its initial state; {where} is the
# fixture's file:line:col of the failed condition
STEPS: list[tuple[dict[str, Any], dict[str, Any], str | None, str, str]] = [
    (
        {"type": "open"},
        GUEST,
        "missing_field",
        "現在の状態「閉」で「開ける」を行うには「メモ」（event.note）が必要です。"
        "メモを書いてください。",
        "In state 'closed', 'open' needs 'note' (event.note). Write a note.",
    ),
    ({"type": "open", "note": "x"}, GUEST, None, "", ""),
    (
        {"type": "close"},
        GUEST,
        "role_not_allowed",
        "現在の状態「開」で「閉める」を行えるのは「管理人」です（g-1 の役割: 「来客」）。",
        "In state 'open', 'close' may be sent by 'keeper' (the roles of g-1: 'guest').",
    ),
    (
        {"type": "open", "note": "y"},
        KEEPER,
        "event_not_allowed",
        "現在の状態「開」では「開ける」はできません（この状態でできる操作: 「閉める」、"
        "「撤去する」）。開いている間は鍵をかけられません。",
        "In state 'open' the event 'open' is not allowed (allowed here: 'close', 'remove'). "
        "No locking while open.",
    ),
    ({"type": "close"}, KEEPER, None, "", ""),
    ({"type": "open", "note": "z"}, KEEPER, None, "", ""),
    (
        {"type": "close"},
        KEEPER,
        "condition_not_met",
        "現在の状態「開」では「閉める」の条件を満たしていません: entity.count < 2"
        "（entity.count = 2） [{where}]。2 回開けたら閉められません。",
        "In state 'open', 'close' is refused: entity.count < 2 does not hold (entity.count = 2)"
        " [{where}]. Not after two openings.",
    ),
    (
        {"type": "break"},
        KEEPER,
        "abolished_state",
        "「故障」はすでに廃止されたステータスのため設定できません（現在の状態「開」）。"
        "故障は使わなくなりました。",
        "'broken' is an abolished status and cannot be set (current state: 'open'). "
        "Broken is no longer used.",
    ),
    ({"type": "remove"}, KEEPER, None, "", ""),
    (
        {"type": "open", "note": "w"},
        KEEPER,
        "final_state",
        "現在の状態「撤去」は最終状態です。「開ける」を含め、これ以上の操作はできません。",
        "'removed' is a final state: no further operations ('open' refused).",
    ),
]


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_each_refusal_says_the_same_in_ja_and_en_whatever_the_language_in_effect(
    engine: FlowEngine, lang: str
) -> None:
    where = f"{engine.policy('doors').path}:43:13"
    with using_language(lang):
        for event, actor, code, ja, en in STEPS:
            result = engine.apply("doors", "D-1", event, actor=actor, at=AT)
            refusal = result.refusal or {}
            assert refusal.get("code") == code, (event, refusal)
            if code is not None:
                message = refusal["message"]
                assert message == {"ja": ja.format(where=where), "en": en.format(where=where)}
                assert type(message["ja"]) is str and type(message["en"]) is str  # plain JSON


# -- the test runner and replay --------------------------------------------------------

FAILING_CASES = """\
kimari: 1
policy: doors
cases:
  - name: wrong on purpose
    refs: [EX-6]
    actor: {id: k-1, roles: [keeper]}
    steps:
      - event: {type: open, note: x}
        expect: {state: closed, transition: close, facts: {count: 9}}
      - event: {type: open, note: x}
        expect: {state: open}
      - event: {type: close}
        expect: {refused: true, code: final_state, message: 壁}
      - event: {type: close}
        expect: {error: {code: actor_invalid}, replayed: true}
  - name: an entity that cannot be imported (an abolished state)
    refs: [EX-6]
    entity: {state: broken}
    steps:
      - event: {type: open}
"""


def test_the_flow_test_runners_failures_read_in_japanese(engine: FlowEngine) -> None:
    folder = Path(engine.policy("doors").path).parent
    tests = folder / "doors.tests.yaml"
    tests.write_text(FAILING_CASES)
    report = run_tests([tests], load_project(folder))
    failures = [f for result in report.failed for f in result.failures]
    assert len(report.failed) == 2 and len(failures) >= 8
    for failure in failures:
        assert_translated(failure)
    japanese = [translate(f, "ja") for f in failures]
    assert "ステップ 1 (open): state: closed を期待しましたが、open でした" in japanese
    assert any(line.startswith("ステップ 2 (open): 拒否されました: ") for line in japanese)
    assert any(line.startswith("開始時のエンティティ (entity): ") for line in japanese)


def test_the_differences_a_replay_finds_read_in_japanese(engine: FlowEngine) -> None:
    engine.apply("doors", "D-1", {"type": "open", "note": "x"}, actor=GUEST, at=AT)
    engine.apply("doors", "D-1", {"type": "close"}, actor=KEEPER, at=AT)
    rows = engine.history("doors", "D-1")
    policy = engine.policy("doors")
    tampered = [
        dataclasses.replace(rows[0], to_state="gone", facts={"count": 5}),
        dataclasses.replace(rows[1], actor=None),
    ]
    _, differences = replay(policy, tampered)
    assert len(differences) == 3
    for difference in differences:
        assert_translated(difference)
    assert (
        translate(differences[0], "ja")
        == "バージョン 1: closed -> open（保存されているのは -> gone）"
    )


def test_a_decision_an_event_consults_that_is_not_served_is_explained_in_japanese(
    tmp_path: Path,
) -> None:
    policy = load_project(consulting_project(tmp_path)).policy("doors")
    event = {"type": "inspect", "facts": {"lock": {"code": "1234"}}}
    entity = initial_entity(flow_of(policy))
    exc = _error(lambda: decide_move(policy, entity, event, actor=KEEPER, consulted={}))
    assert exc.code == "consulted_policy_missing"
    assert translate(exc.diagnostics[0].message, "ja") == (
        "このイベントが問い合わせるポリシー 'locks' は提供されていません"
    )
    assert isinstance(exc.diagnostics[0].message, Msg)
