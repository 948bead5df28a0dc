"""`KIMARI_LANG=ja`: the CLI's messages and report lines in Japanese, codes and places unchanged.

English is the default, and the host's LANG does not change it (docs/messages.md).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from engine.cli.main import language_from, main
from engine.core.i18n import language
from tests import FIXTURES, ROOT

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
    assert "ポリシー 4 件、テストファイル 1 件: エラー 1 件、警告 0 件" in err


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
    assert "outcome.held: true を期待しましたが、false でした" in out
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


@pytest.mark.parametrize(
    ("text", "place", "reason"),
    [
        ("", "1:1", "ここに値が必要です"),
        ('{"order": {"total": 1,}}', "1:23", "ダブルクォートで囲んだキーが必要です"),
        ('{"order" {}}', "1:10", "キーの後に ':' が必要です"),
        ('{"order": "x', "1:11", "ここから始まる文字列が閉じられていません"),
    ],
)
def test_a_json_mistake_is_named_in_japanese_at_its_place(
    capsys: pytest.CaptureFixture[str],
    japanese: None,
    tmp_path: Path,
    text: str,
    place: str,
    reason: str,
) -> None:
    """Python's parser says 'Expecting value' whatever the language: its complaints are
    words of the catalogue (docs/messages.md leaves only click's own in English)."""
    facts = tmp_path / "facts.json"
    facts.write_text(text)
    code, _, err = run(capsys, "decide", "routing", str(facts), "--policies", str(FIXTURE))
    assert code == 1
    assert f"{facts}:{place}: JSON として正しくありません: " in err and reason in err, err
    assert "Expecting" not in err


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
    # a facts file the system cannot open: its reason in words too, not the system's English
    missing, folder = tmp_path / "nowhere.json", tmp_path
    for path, reason in ((missing, "そのファイルやフォルダはありません"), (folder, "フォルダです")):
        code, _, err = run(capsys, "decide", "routing", str(path), "--policies", str(FIXTURE))
        assert code == 2
        assert f"file_unreadable: {path} を読めません: {reason}" in err, err


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
    assert "4 policies, 1 test file: 1 error, 0 warnings" in err
    assert language() == "en"  # and a run leaves nothing behind


# -- flows ----------------------------------------------------------------------------

SHIPPED = str(ROOT / "policies")
DEALER = ("--actor", "dealer-1", "--role", "販売店", "--actor-name", "横浜店 山田")
OPERATOR = ("--actor", "op-1", "--role", "オートックワン")


def test_flow_and_history_read_in_japanese_with_the_same_codes_and_states(
    capsys: pytest.CaptureFixture[str], japanese: None, tmp_path: Path
) -> None:
    store = str(tmp_path / "flows.sqlite3")

    def flow(body: object, *actor: str) -> tuple[int, str, str]:
        path = tmp_path / "event.json"
        path.write_text(json.dumps(body, ensure_ascii=False))
        return run(capsys, "flow", "claim-status", "EST-1", str(path), "--store", store,
                   "--policies", SHIPPED, "--at", AT, *actor)  # fmt: skip

    # EX-2: made 対象外 with an eligible reason first, the estimate can be claimed
    assert flow({"type": "exclude", "exclusion_reason": "重複"}, *DEALER)[0] == 0
    code, out, _ = flow({"type": "claim"}, *DEALER)
    assert code == 0
    assert (
        "claim-status EST-1: 未申請 (not_claimed) -> 依頼中 (requested)"
        "（遷移 claim [EX-2, EX-3.6, EX-4, EX-6]）" in out
    )
    assert "  送信者 横浜店 山田 (dealer-1) [販売店]、リビジョン " in out
    code, out, _ = flow({"type": "start_review"}, *DEALER)
    assert code == 1
    assert "claim-status EST-1: 依頼中 (requested) で拒否されました: role_not_allowed" in out
    assert "を行えるのは「オートックワン」です（dealer-1 の役割: 「販売店」）。" in out
    assert "  この状態でできるイベント: cancel, start_review, exclude" in out
    assert flow({"type": "start_review"}, *OPERATOR)[0] == 0
    code, out, _ = flow({"type": "reject"}, *OPERATOR)
    assert code == 1
    assert "で拒否されました: missing_field" in out and "  不足: /event/reason" in out
    code, _, err = flow({"type": "claim", "detial": "x"}, *DEALER)
    assert code == 1
    assert (
        "/event/detial: unknown_field: 項目 'detial' はありません ('detail' のことですか?)" in err
    )
    code, out, _ = run(capsys, "history", "claim-status", "EST-1", "--refusals", "--store",
                       store, "--policies", SHIPPED)  # fmt: skip
    assert code == 0
    assert out.startswith("claim-status EST-1: 確認中 (under_review)、バージョン 3\n")
    assert "[exclude] 送信者 横浜店 山田 (dealer-1) [販売店] リビジョン " in out
    assert "[claim] 送信者 横浜店 山田 (dealer-1) [販売店] リビジョン " in out
    assert "拒否されたイベント（遷移の履歴には含まれません）:" in out
    assert "  バージョン 2 の時点  2024-09-01T10:00:00+09:00  start_review " in out
    code, out, _ = run(capsys, "history", "claim-status", "EST-9", "--store", store,
                       "--policies", SHIPPED)  # fmt: skip
    assert (
        out
        == "claim-status EST-9: 未申請 (not_claimed)、バージョン 0（イベントはまだありません）\n"
    )
    code, _, err = run(capsys, "flow", "cancellation-fees", "X", str(tmp_path / "event.json"),
                       "--store", store, "--policies", SHIPPED, *DEALER)  # fmt: skip
    assert code == 2
    assert (
        "not_a_flow: ポリシー 'cancellation-fees' は判定のポリシーで、フローではありません" in err
    )


# -- kimari serve's configuration -------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "line"),
    [
        (("--port", "99999"), {}, "config_invalid: port は 0〜65535 にしてください"),
        (
            ("--host", "0.0.0.0"),
            {},
            "config_invalid: トークンが設定されておらず、ホスト 0.0.0.0 は"
            "ループバックではありません。",
        ),
        (
            (),
            {"KIMARI_TOKENS": "secret-1:nobody"},
            "config_invalid: KIMARI_TOKENS の各項目は 'secret:alice:decide+publish'、",
        ),
        (
            (),
            {"KIMARI_WORKERS": "many"},
            "config_invalid: workers: 'many' は 整数 として正しくありません",
        ),
        (
            ("--store", "mysql://db/kimari"),
            {},
            "config_invalid: ストア 'mysql://db/kimari': スキーム 'mysql' は使えません",
        ),
    ],
)
def test_a_configuration_kimari_serve_refuses_is_explained_in_japanese(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    japanese: None,
    args: tuple[str, ...],
    env: dict[str, str],
    line: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, _, err = run(capsys, "serve", *args)  # refused before anything starts
    assert code == 2
    assert line in err


# -- the policy lifecycle's text reports ---------------------------------------------------

NO_FEE_DAYS = "    default: 7\n    minimum: 0\n    refs: [FE-2]"
# the lines each step prints, in each language (a decision id or a time never among them)
# the shipped cancellation-fees cases, all passing (a case added there changes the count)
CASES = len(
    re.findall(
        r"^  - name:",
        (ROOT / "policies" / "cancellation-fees.tests.yaml").read_text(encoding="utf-8"),
        re.MULTILINE,
    )
)
REPORTS = {
    "en": {
        "diff": [
            "cancellation-fees: published (cancellation-fees@1) [",
            "settings:\n  ~ no_fee_days\n      default: 7\n               -> 5\n",
        ],
        "impact": [
            "replayed 12 decisions of the decision log of cancellation-fees in ",
            "\n  changed            2  (the outcome differs)\n"
            "  rules only         0  (the same outcome, by other rules)\n"
            "  reasons only       6  (the same outcome and rules, other reasons)\n"
            "  unchanged          4\n"
            "  invalid            0  (facts the draft's schema refuses)\n"
            "  failed             0  (could not be decided)\n"
            "transitions:\n",
            "rules that newly fire: fee-by-workload 2\nstop firing: fee-none 2\n",
            "reasons that read otherwise, by rule: fee-none 6\n",
            "changed decisions (the first 2):\n",
            ", both explanations (rules that differ):\n  fee-none: applied -> failed\n",
            "      false: derived.days_since_contract_start <= settings.no_fee_days  (",
            "OVER --max-changed 1\n",
        ],
        "draft": ["draft cancellation-fees@2 [", "] draft by alice\n"],
        "reject": ["rejected cancellation-fees@2 ["],
        "publish": [
            f"] pending by alice\n  tests: {CASES} of {CASES} cases pass\n"
            "  impact over 7.0 days: 12 replayed, 0 changed, 0 invalid, 0 failed\n"
            "waiting for 1 approval: kimari approve cancellation-fees@3 (by someone else)\n"
        ],
        "approve": ["] as publication ", ", approved by bob\n"],
        "rollback": ["published cancellation-fees@1 [", "(rollback by bob)\n"],
        "revisions": [
            f"  by alice, approved by bob\n    tests {CASES}/{CASES}; impact 0 of 12 changed;"
        ],
    },
    "ja": {
        "diff": [
            "cancellation-fees: 公開中 (cancellation-fees@1) [",
            "settings:\n  ~ no_fee_days\n      default: 7\n               -> 5\n",
        ],
        "impact": [
            "cancellation-fees の判定ログ から判定 12 件を ",
            "\n  変更あり           2  （結果が変わります）\n"
            "  ルールのみ         0  （結果は同じで、適用されるルールが異なります）\n"
            "  理由のみ           6  （結果も適用されるルールも同じで、理由の文言が異なります）\n"
            "  変更なし           4\n"
            "  不正               0  （下書きのスキーマが受け付けないファクト）\n"
            "  失敗               0  （判定できませんでした）\n"
            "遷移:\n",
            "新たに適用されるルール: fee-by-workload 2\n適用されなくなるルール: fee-none 2\n",
            "結果が変わる判定（最初の 2 件）:\n",
            "、変更前と変更後の説明（結果が異なるルール）:\n  fee-none: 適用 -> 不成立\n",
            "      偽: derived.days_since_contract_start <= settings.no_fee_days  (",
            "OVER: --max-changed 1 を超えました\n",
        ],
        "draft": ["下書き cancellation-fees@2 [", "] draft（作成: alice）\n"],
        "reject": ["却下しました: cancellation-fees@2 ["],
        "publish": [
            f"] pending（作成: alice）\n  テスト: {CASES} 件中 {CASES} 件が成功\n"
            "  影響（7.0 日分）: 再判定 12 件、変更あり 0 件、不正 0 件、失敗 0 件\n"
            "承認待ちです（必要な承認: 1 件）。作成者以外の人が kimari approve cancellation-fees@3 "
            "を実行してください\n"
        ],
        "approve": ["] を公開 ", " として公開しました（承認: bob）\n"],
        "rollback": [
            "cancellation-fees@1 [",
            " として再び公開しました（bob によるロールバック）\n",
        ],
        "revisions": [
            f"  作成: alice、承認: bob\n    テスト {CASES}/{CASES}; 影響 12 件中 0 件が変更;"
        ],
    },
}


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_diff_impact_and_the_approval_loop_report_in_the_language_asked_for(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lang: str
) -> None:
    from engine.lifecycle.workflow import Lifecycle, Rules
    from tests.lifecycle.conftest import cancellation, log_decisions

    monkeypatch.setenv("KIMARI_LANG", lang)
    monkeypatch.setenv("KIMARI_APPROVALS_REQUIRED", "1")
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    folder, store = tmp_path / "policies", tmp_path / "var" / "kimari.sqlite3"
    with Lifecycle(store, Rules(workers=1), files=True) as lifecycle:
        lifecycle.bootstrap(folder)
    log_decisions(store, folder, "cancellation-fees", [cancellation(d) for d in range(12)])
    path = folder / "cancellation-fees.yaml"
    shipped = path.read_text(encoding="utf-8")
    path.write_text(shipped.replace(NO_FEE_DAYS, NO_FEE_DAYS.replace("7", "5")))
    where = ("--store", str(store))
    files = ("--policies", str(folder))
    steps = [
        ("diff", 0, ("diff", "cancellation-fees", *files)),
        ("impact", 1, ("impact", "cancellation-fees", "--no-progress", "--workers", "1",
                       "--max-changed", "1", *files)),
        ("draft", 0, ("draft", "cancellation-fees", "--as", "alice", "-m", "five days", *files)),
        ("reject", 0, ("reject", "cancellation-fees@2", "--as", "bob")),
        # a change that keeps every test and decision as it was: pending, approved by bob
        ("publish", 0, ("publish", "cancellation-fees", "--as", "alice", "--workers", "1", *files)),
        ("approve", 0, ("approve", "cancellation-fees@3", "--as", "bob")),
        ("rollback", 0, ("rollback", "cancellation-fees", "--to", "1", "--as", "bob")),
        ("revisions", 0, ("revisions", "cancellation-fees")),
    ]  # fmt: skip
    for name, wanted, args in steps:
        if name == "publish":
            path.write_text(shipped.replace("    default: 7\n", "    default: 7 \n", 1))
        code, out, err = run(capsys, *args, *where)
        assert code == wanted, (name, out, err)
        for line in REPORTS[lang][name]:
            assert line in out, (name, line, out)
    # a step refused for the revision's state names the state in words
    code, _, err = run(capsys, "approve", "cancellation-fees@3", "--as", "carol", *where)
    assert code == 1
    state = {"ja": "cancellation-fees@3 は 公開終了 で、承認待ちではありません", "en": "is retired"}
    assert state[lang] in err, err
    assert language() == "en"


def test_the_test_files_left_unchecked_are_counted_in_japanese_too(
    capsys: pytest.CaptureFixture[str], japanese: None, broken: Path
) -> None:
    (broken / "routing.tests.yaml").write_text("policy: routing\ncases: []\n")
    _, _, err = run(capsys, "validate", str(broken))
    assert "ポリシー 4 件、テストファイル 1 件（ほかに 1 件は、" in err
    assert "ポリシーがコンパイルできないため未検査）" in err
