"""Messages in English and Japanese: the Msg record, the language in effect, and the catalogue.

The catalogue checks are what keep a new message from staying untranslated: every
Msg("...") of engine/ (found by Babel's extractor, as `make messages` finds them) must have a
Japanese entry in engine/locale/ja/LC_MESSAGES/kimari.po with the same fields, and the
compiled kimari.mo that ships must say the same as the .po. And what keeps a message from
never becoming a Msg: no module of engine/ hands plain text (a literal, an f-string) to a
Diagnostic, an error of engine/core/errors.py or a problem answer, except the few listed in
ENGLISH_ON_PURPOSE with the reason.
"""

from __future__ import annotations

import ast
import gettext
import pickle
import string
import threading

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from engine.core import errors
from engine.core.errors import Diagnostic, InputError, Location
from engine.core.i18n import (
    LOCALE_DIR,
    Msg,
    Rendered,
    language,
    message_of,
    pick_language,
    plural,
    translate,
    translated,
    using_language,
)
from tests import ROOT

PO = LOCALE_DIR / "ja" / "LC_MESSAGES" / "kimari.po"
MO = PO.with_suffix(".mo")


def extracted() -> dict[str, list[str]]:
    """Every message id of engine/, with where it is written: what `make messages` finds."""
    found: dict[str, list[str]] = {}
    for file, line, message, _comments, _context in extract_from_dir(
        ROOT / "engine", keywords={"Msg": None}, comment_tags=()
    ):
        assert isinstance(message, str), f"engine/{file}:{line}: a Msg with no literal template"
        found.setdefault(message, []).append(f"engine/{file}:{line}")
    return found


def catalogue() -> dict[str, str]:
    with PO.open("rb") as f:
        po = read_po(f)
    return {m.id: m.string for m in po if m.id and not m.fuzzy}  # type: ignore[misc]


class _Anything:
    """A field value that takes any format specification (:04X, :,)."""

    def __format__(self, spec: str) -> str:
        return "v"


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


# -- the catalogue -------------------------------------------------------------------


def test_every_message_of_the_engine_has_a_japanese_translation() -> None:
    translations = catalogue()
    missing = {m: where for m, where in extracted().items() if not translations.get(m)}
    assert not missing, f"untranslated (run `make messages`, then fill kimari.po): {missing}"


def test_every_template_is_a_plain_literal_that_babel_can_extract() -> None:
    """Msg(f"...") or Msg(text) would run, in English, but never reach the catalogue."""
    found = []
    for path in sorted((ROOT / "engine").rglob("*.py")):
        if path.name == "i18n.py":  # Msg itself, rebuilding a pickled message
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Msg":
                first = node.args[0] if node.args else None
                if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
                found.extend(
                    f"{path.relative_to(ROOT)}:{node.lineno}: an f-string field"
                    for keyword in node.keywords
                    if isinstance(keyword.value, ast.JoinedStr)
                )
    assert found == []


def test_babel_extracts_every_template_the_engine_writes() -> None:
    """Babel's extractor misses some nestings (a Msg inside another call inside a Msg's
    fields): such a template runs, in English, and never reaches the catalogue."""
    written = {}
    for path in sorted((ROOT / "engine").rglob("*.py")):
        if path.name == "i18n.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Msg":
                first = node.args[0] if node.args else None
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    written[first.value] = f"{path.relative_to(ROOT)}:{node.lineno}"
    known = extracted()
    missed = {t: where for t, where in written.items() if t not in known}
    assert missed == {}, "make each such Msg a variable before the Msg that holds it"


def test_the_catalogue_holds_no_message_the_engine_no_longer_has() -> None:
    stale = set(catalogue()) - set(extracted())
    assert not stale, f"run `make messages` to drop them: {sorted(stale)}"


def test_each_translation_has_exactly_the_fields_of_its_english_template() -> None:
    for english, japanese in catalogue().items():
        assert fields(japanese) == fields(english), (english, japanese)
        # and it formats: a stray brace would fail here, not in front of a user
        japanese.format(**{name: _Anything() for name in fields(english)})


# Where a message for people is handed over, by callee: (position, keyword) of the text.
# A function of engine/ whose name starts with '_' and that passes one of its parameters
# straight into one of these is a sink too (_bad, _fault, _unavailable, ...).
SINKS: dict[str, list[tuple[int | None, str]]] = {
    "Diagnostic": [(1, "message"), (None, "hint")],
    "error": [(1, "message"), (None, "hint")],  # Build.error, Build.warn: the compilers'
    "warn": [(1, "message"), (None, "hint")],
    "problem": [(2, "detail"), (None, "hint")],  # the service's problem+json answers
    "problem_body": [(2, "detail")],
    "from_diagnostics": [(2, "detail")],
    **{
        name: [(0, "diagnostics")]
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.KimariError)
    },
}
# Plain English text handed over on purpose: (module, callee) -> why it is not a Msg.
ENGLISH_ON_PURPOSE = {
    ("engine/durable/adapter.py", "_fault"): "the rule backend's own faults (engine_fault): "
    "kimari's invariants about durable_rules, logged in full for the operator; the client's "
    "problem title and detail are translated",
    ("engine/lifecycle/impact.py", "KimariError"): "a Python exception's own text (a bug met "
    "while replaying), reported as it is",
    ("engine/store/sqlite.py", "Diagnostic"): "SQLite's own error text (store_unavailable), "
    "logged; the client's detail is translated",
    ("engine/store/backend.py", "Diagnostic"): "the database driver's own error text "
    "(store_unavailable), logged; the client's detail is translated",
    ("engine/service/worker.py", "problem"): "an operation code the front never sends: a bug "
    "between the front and a worker, not a message for a person",
}


def _callee(call: ast.Call) -> str | None:
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)


def _argument(call: ast.Call, position: int | None, keyword: str) -> ast.expr | None:
    if (
        position is not None
        and len(call.args) > position
        and not any(isinstance(a, ast.Starred) for a in call.args[: position + 1])
    ):
        return call.args[position]
    return next((k.value for k in call.keywords if k.arg == keyword), None)


def _plain_text(node: ast.expr) -> bool:
    """Text that can only ever be English: a literal, an f-string, or one made from them."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp):
        return _plain_text(node.left) or _plain_text(node.right)
    if isinstance(node, ast.IfExp):
        return _plain_text(node.body) or _plain_text(node.orelse)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr in ("format", "join", "strip") and _plain_text(node.func.value)
    return False


def _message_helpers(trees: dict[str, ast.Module]) -> dict[str, list[tuple[int | None, str]]]:
    """The private functions that pass a parameter straight into a sink's message."""
    helpers: dict[str, list[tuple[int | None, str]]] = {}
    for tree in trees.values():
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef) or not function.name.startswith("_"):
                continue
            params = [a.arg for a in function.args.args]
            for call in ast.walk(function):
                if not isinstance(call, ast.Call):
                    continue
                for position, keyword in SINKS.get(_callee(call) or "", []):
                    given = _argument(call, position, keyword)
                    if isinstance(given, ast.Name) and given.id in params:
                        helpers.setdefault(function.name, []).append(
                            (params.index(given.id), given.id)
                        )
    return helpers


def test_no_module_of_the_engine_hands_plain_text_to_a_message_for_people() -> None:
    """Every module of engine/ is extracted (`make messages` reads the whole tree), so what
    this test guards is the other way a message stays English: written as a plain string."""
    trees = {
        str(path.relative_to(ROOT)): ast.parse(path.read_text(encoding="utf-8"))
        for path in sorted((ROOT / "engine").rglob("*.py"))
    }
    sinks = {**SINKS, **_message_helpers(trees)}
    assert {"_bad", "_fault", "_unavailable"} <= set(sinks)  # the helpers are found
    found: dict[tuple[str, str], list[int]] = {}
    for module, tree in trees.items():
        for call in ast.walk(tree):
            if not isinstance(call, ast.Call):
                continue
            callee = _callee(call) or ""
            for position, keyword in sinks.get(callee, []):
                given = _argument(call, position, keyword)
                if given is not None and _plain_text(given):
                    found.setdefault((module, callee), []).append(call.lineno)
    unexplained = {key: lines for key, lines in found.items() if key not in ENGLISH_ON_PURPOSE}
    assert not unexplained, f"write these messages as Msg(...) (docs/messages.md): {unexplained}"
    assert set(ENGLISH_ON_PURPOSE) <= set(found), "ENGLISH_ON_PURPOSE lists what is gone"


def test_the_compiled_catalogue_says_what_the_po_file_says() -> None:
    with MO.open("rb") as f:
        compiled = gettext.GNUTranslations(f)
    translations = catalogue()
    shipped = {k: v for k, v in compiled._catalog.items() if k}  # type: ignore[attr-defined]
    assert shipped == translations, "kimari.mo is stale: run `make messages`"


# -- Msg -----------------------------------------------------------------------------


def test_a_message_is_its_english_text() -> None:
    message = Msg("unknown fact field '{name}'", name="order.paymnt")
    assert message == "unknown fact field 'order.paymnt'"
    assert isinstance(message, str)
    assert str(message) == "unknown fact field 'order.paymnt'"
    assert type(str(message)) is str


def test_a_message_is_shown_in_japanese_with_the_same_fields() -> None:
    message = Msg("unknown fact field '{name}'", name="order.paymnt")
    assert translate(message, "ja") == "ファクト項目 'order.paymnt' はありません"
    assert translate(message, "en") == "unknown fact field 'order.paymnt'"


def test_a_nested_message_is_translated_too_and_plain_text_is_kept_as_it_is() -> None:
    inner = Msg("date out of range")
    outer = Msg("derived value '{name}': {reason}", name="due", reason=inner)
    assert outer == "derived value 'due': date out of range"
    assert translate(outer, "ja") == "派生値 'due': 日付が範囲外です"
    plain = Msg("derived value '{name}': {reason}", name="due", reason="year 0 is out of range")
    assert translate(plain, "ja") == "派生値 'due': year 0 is out of range"


def test_a_template_the_catalogue_lacks_is_shown_in_english() -> None:
    message = Msg("a message nobody translated: {x}", x=1)
    assert translate(message, "ja") == "a message nobody translated: 1"
    assert translate(message, "fr") == "a message nobody translated: 1"


def test_text_that_is_not_a_message_is_never_changed() -> None:
    assert translate("unknown fact field 'x'", "ja") == "unknown fact field 'x'"
    assert translated({"a": [Msg("text")], "b": 1}, "ja") == {"a": ["文字列"], "b": 1}


def test_format_specifications_are_kept_in_both_languages() -> None:
    message = Msg("the character U+{code:04X} is not allowed in a YAML file", code=7)
    assert message == "the character U+0007 is not allowed in a YAML file"
    assert translate(message, "ja") == "文字 U+0007 は YAML ファイルでは使えません"


def test_a_message_survives_pickling_with_its_template() -> None:
    message = Msg("unknown fact field '{name}'", name="x")
    again = pickle.loads(pickle.dumps(message))
    assert again == message
    assert translate(again, "ja") == translate(message, "ja")


def test_rendered_text_is_made_in_the_language_it_is_shown_in() -> None:
    diagnostics = [Diagnostic("c", Msg("text")), Diagnostic("c", Msg("a list"))]
    text = Rendered(lambda lang: "; ".join(d.render(lang) for d in diagnostics))
    assert text == "c: text; c: a list"
    assert translate(text, "ja") == "c: 文字列; c: リスト"
    assert pickle.loads(pickle.dumps(text)) == "c: text; c: a list"


def test_the_message_of_an_exception_keeps_its_template() -> None:
    exc = ValueError(Msg("date out of range"))
    assert translate(message_of(exc), "ja") == "日付が範囲外です"
    assert message_of(ValueError("plain")) == "plain"
    assert message_of(ValueError("a", "b")) == "('a', 'b')"


# -- diagnostics ---------------------------------------------------------------------


def test_a_diagnostic_renders_its_message_and_hint_in_the_language_asked_for() -> None:
    diagnostic = Diagnostic(
        "unknown_function",
        Msg("unknown function '{name}'", name="add_month"),
        Location("p.yaml", 8, 23),
        hint=Msg("did you mean '{name}'?", name="add_months"),
    )
    assert diagnostic.render("en") == (
        "p.yaml:8:23: unknown_function: unknown function 'add_month' (did you mean 'add_months'?)"
    )
    assert diagnostic.render("ja") == (
        "p.yaml:8:23: unknown_function: 関数 'add_month' はありません ('add_months' のことですか?)"
    )
    record = diagnostic.to_dict("ja")
    assert record["code"] == "unknown_function"
    assert record["location"] == {"file": "p.yaml", "line": 8, "col": 23}
    assert record["message"] == "関数 'add_month' はありません"
    assert record["hint"] == "'add_months' のことですか?"
    assert diagnostic.message == "unknown function 'add_month'"  # the record stays English


def test_an_exception_says_itself_in_english_whatever_language_is_in_effect() -> None:
    with using_language("ja"):
        exc = InputError([Diagnostic("c", Msg("text"), pointer="/facts/x")])
        assert exc.diagnostics[0].render() == "/facts/x: c: 文字列"
    assert str(exc) == "/facts/x: c: text"


# -- the language in effect ----------------------------------------------------------


def test_the_language_in_effect_is_english_unless_a_block_chooses_another() -> None:
    assert language() == "en"
    with using_language("ja") as chosen:
        assert chosen == "ja"
        assert translate(Msg("text")) == "文字列"
        with using_language("en"):
            assert translate(Msg("text")) == "text"
        assert language() == "ja"
    assert language() == "en"


def test_a_block_left_by_an_exception_gives_the_language_back() -> None:
    with pytest.raises(KeyError), using_language("ja"):
        assert language() == "ja"
        raise KeyError("x")  # a request that fails: the worker's next one is not in Japanese
    assert language() == "en"


@pytest.mark.parametrize("asked", [None, "", "fr", "JA", "ja_JP"])
def test_a_language_kimari_does_not_speak_is_english(asked: str | None) -> None:
    with using_language(asked) as chosen:
        assert chosen == "en"


def test_each_thread_has_its_own_language() -> None:
    seen: list[str] = []
    with using_language("ja"):
        thread = threading.Thread(target=lambda: seen.append(language()))
        thread.start()
        thread.join()
        assert language() == "ja"
    assert seen == ["en"]


@pytest.mark.parametrize(
    ("header", "wanted"),
    [
        (None, "en"),
        ("", "en"),
        ("ja", "ja"),
        ("ja-JP", "ja"),
        ("JA-jp", "ja"),
        ("en", "en"),
        ("en-US,en;q=0.9,ja;q=0.8", "en"),
        ("ja,en-US;q=0.9,en;q=0.8", "ja"),
        ("fr, ja;q=0.5", "ja"),  # the only one of ours it names
        ("en;q=0.4, ja;q=0.5", "ja"),
        ("en;q=0.5, ja;q=0.5", "en"),  # a tie: the first named
        ("ja;q=0", "en"),  # q=0: not acceptable
        ("ja;q=0.001", "ja"),
        ("ja;q=nan", "en"),
        ("ja;q=2", "en"),
        ("ja;q=x", "en"),
        ("*", "en"),
        ("fr-FR,de", "en"),
        (";;,,", "en"),
    ],
)
def test_the_answer_language_is_the_supported_one_the_client_ranks_highest(
    header: str | None, wanted: str
) -> None:
    assert pick_language(header) == wanted


def test_a_count_reads_one_or_many_in_english_and_the_same_in_japanese() -> None:
    def errors(count: int) -> Msg:
        return plural(count, Msg("{count} error", count=count), Msg("{count} errors", count=count))

    assert [str(errors(n)) for n in (0, 1, 2)] == ["0 errors", "1 error", "2 errors"]
    line = Msg("{summary}: {errors}, {warnings}", summary="x", errors=errors(1), warnings="-")
    assert translate(line, "ja") == "x: エラー 1 件、-"
