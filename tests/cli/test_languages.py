"""`KIMARI_LANG=ja`: the CLI's messages and report lines in Japanese, codes and places unchanged.

English is the default, and the host's LANG does not change it (docs/messages.md).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.cli.main import language_from, main
from engine.core.i18n import language
from tests import FIXTURES

FIXTURE = FIXTURES / "project"
AT = "2024-09-01T10:00:00+09:00"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def japanese(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIMARI_LANG", "ja")


@pytest.fixture()
def broken(tmp_path: Path) -> Path:
    folder = tmp_path / "policies"
    shutil.copytree(FIXTURE, folder)
    path = folder / "routing.yaml"
    path.write_text(path.read_text().replace("order.total >= 100000\n", "order.totl >= 100000\n"))
    return folder


@pytest.mark.parametrize(
    ("value", "wanted"),
    [
        (None, "en"),
        ("", "en"),
        ("en", "en"),
        ("ja", "ja"),
        ("ja_JP.UTF-8", "ja"),
        ("JA-jp", "ja"),
        ("fr", "en"),
        ("jam", "en"),
        ("C", "en"),
    ],
)
def test_kimari_lang_names_the_language_and_anything_else_is_english(
    value: str | None, wanted: str
) -> None:
    assert language_from(value) == wanted


def test_validate_prints_the_problem_and_the_summary_in_japanese_with_the_same_place(
    capsys: pytest.CaptureFixture[str], japanese: None, broken: Path
) -> None:
    code, _, err = run(capsys, "validate", str(broken))
    assert code == 2
    assert (
        "routing.yaml:16:17: unknown_fact_field: ファクト項目 'order.totl' はありません "
        "('order.total' のことですか?)" in err
    )
    assert "\n        when: order.totl >= 100000\n" in err  # the source line and its caret
    assert "ポリシー 4 件、テストファイル 0 件: エラー 1 件、警告 0 件" in err


def test_validate_in_json_keeps_codes_and_keys_and_translates_the_messages(
    capsys: pytest.CaptureFixture[str], japanese: None, broken: Path
) -> None:
    code, out, _ = run(capsys, "validate", str(broken), "--format", "json")
    assert code == 2
    (error,) = json.loads(out)["errors"]
    assert error["code"] == "unknown_fact_field"
    assert error["location"]["line"] == 16
    assert error["message"] == "ファクト項目 'order.totl' はありません"
    assert error["hint"] == "'order.total' のことですか?"


def test_the_test_report_reads_in_japanese(
    capsys: pytest.CaptureFixture[str], japanese: None, tmp_path: Path
) -> None:
    folder = tmp_path / "policies"
    shutil.copytree(FIXTURE, folder)
    path = folder / "holds.tests.yaml"
    path.write_text(
        path.read_text().replace(
            "expect: {fired: [], outcome: {held: false,",
            "expect: {fired: [big], outcome: {held: true,",
        )
    )
    code, out, _ = run(capsys, "test", str(folder))
    assert code == 1
    assert "outcome.held: True を期待しましたが、False でした" in out
    assert "ルール big が適用されませんでした: " in out
    assert "holds.yaml:30:11: `order.total > settings.limit` が偽でした" in out
    assert "成功 5 件、失敗 1 件、エラー 0 件" in out
    assert "FAIL " in out  # the marks stay as they are, for whoever greps them


def test_decide_with_bad_facts_names_the_pointer_in_japanese(
    capsys: pytest.CaptureFixture[str], japanese: None, tmp_path: Path
) -> None:
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps({"order": {"total": "many", "sequence": 1}}))
    code, _, err = run(capsys, "decide", "routing", str(facts), "--policies", str(FIXTURE))
    assert code == 1
    assert "/facts/order/total: type_mismatch: integer が必要ですが、string になっています" in err


def test_usage_errors_of_the_cli_itself_read_in_japanese(
    capsys: pytest.CaptureFixture[str], japanese: None, tmp_path: Path
) -> None:
    code, _, err = run(capsys, "validate", str(tmp_path / "nowhere"))
    assert code == 2
    assert "file_unreadable: " in err
    assert "を読めません: そのファイルやフォルダはありません" in err
    code, _, err = run(capsys, "log", "--store", str(tmp_path / "none.sqlite3"))
    assert code == 2
    assert "store_missing: " in err and "に判定ログがありません" in err


def test_decide_explains_in_japanese(
    capsys: pytest.CaptureFixture[str], japanese: None, tmp_path: Path
) -> None:
    facts = tmp_path / "facts.json"
    facts.write_text(
        json.dumps({"order": {"total": 150000, "sequence": 1, "payment": {"method": "card"}}})
    )
    code, out, _ = run(
        capsys, "decide", "routing", str(facts), "--policies", str(FIXTURE), "--at", AT, "--explain"
    )
    assert code == 0
    assert "結果:" in out and "queue: vip" in out
    assert "✓ vip (TS-1) 適用" in out
    assert "~ large (TS-1) 条件成立" in out
    assert "条件は成り立ちましたが、ヒットポリシー" in out
    assert '偽: order.payment.method == "cod"' in out


def test_without_kimari_lang_the_cli_speaks_english_whatever_the_host_locale(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, broken: Path
) -> None:
    monkeypatch.delenv("KIMARI_LANG", raising=False)
    monkeypatch.setenv("LANG", "ja_JP.UTF-8")
    monkeypatch.setenv("LC_ALL", "ja_JP.UTF-8")
    _, _, err = run(capsys, "validate", str(broken))
    assert "unknown fact field 'order.totl'" in err
    assert "4 policies, 0 test files: 1 errors, 0 warnings" in err
    assert language() == "en"  # and a run leaves nothing behind
