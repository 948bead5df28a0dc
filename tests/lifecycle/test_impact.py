"""Impact: logged decisions replayed against a draft and against the published revision."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.core.errors import EngineFault
from engine.lifecycle import impact
from engine.lifecycle.workflow import Lifecycle
from tests.lifecycle.conftest import cancellation, drop_workload_percent, log_decisions

NO_FEE_DAYS = "    default: 7\n    minimum: 0\n    refs: [FE-2]"


def _five_days(folder: Path) -> Path:
    """A draft with one threshold moved: no fee within 5 days of the start, not 7."""
    path = folder.parent / "draft" / "cancellation-fees.yaml"
    path.parent.mkdir(exist_ok=True)
    text = (folder / "cancellation-fees.yaml").read_text(encoding="utf-8")
    assert NO_FEE_DAYS in text
    text = text.replace(NO_FEE_DAYS, NO_FEE_DAYS.replace("7", "5"))
    path.write_text(text.replace("../schemas/", "../schemas/"), encoding="utf-8")
    return path


def _store(lifecycle: Lifecycle) -> Path:
    return lifecycle.path


def test_a_moved_threshold_changes_exactly_the_decisions_between_the_old_and_new_boundary(
    lifecycle: Lifecycle, folder: Path
) -> None:
    ids = log_decisions(
        _store(lifecycle), folder, "cancellation-fees", [cancellation(d) for d in range(12)]
    )
    draft = _five_days(folder)
    result = lifecycle.impact("cancellation-fees", draft=str(draft))
    assert (result["replayed"], result["changed"], result["unchanged"]) == (12, 2, 4)
    assert (result["invalid"], result["failed"], result["not_reproduced"]) == (0, 0, 0)
    assert [c["decision_id"] for c in result["changes"]] == [ids[6], ids[7]]  # days 6 and 7
    # days 0-5 keep their fee, but fee-none's reason names the days: "（7日以内）" -> "（5日以内）"
    assert result["reasons_only"] == 6
    assert [c["decision_id"] for c in result["reason_changes"]] == ids[:6]
    assert result["reason_rules"] == {"fee-none": 6}
    for change in result["changes"]:
        assert change["before"]["fee_tier"] == "none"
        assert change["after"]["fee_tier"] == "by_workload"
        assert change["after"]["fee_percent"] == 30
        assert "fee-none" in change["fired"]["before"]
        assert "fee-by-workload" in change["fired"]["after"]
    assert {"from": "none", "to": "by_workload", "count": 2} in result["transitions"]["fee_tier"]
    assert result["rules"] == {
        "newly_fire": {"fee-by-workload": 2},
        "stop_firing": {"fee-none": 2},
    }
    [sample] = result["samples"][:1]
    assert sample["decision_id"] == ids[6]
    verdicts = {
        side: {r["rule"]: r["verdict"] for r in sample[side]["explanation"]["rules"]}
        for side in ("before", "after")
    }
    assert verdicts["before"]["fee-none"] == "applied"
    assert verdicts["after"]["fee-none"] == "failed"


def test_max_changed_flags_a_report_over_the_limit(lifecycle: Lifecycle, folder: Path) -> None:
    log_decisions(
        _store(lifecycle), folder, "cancellation-fees", [cancellation(d) for d in range(9)]
    )
    draft = str(_five_days(folder))
    assert not lifecycle.impact("cancellation-fees", draft=draft, max_changed=2)["over_limit"]
    assert lifecycle.impact("cancellation-fees", draft=draft, max_changed=1)["over_limit"]


def test_facts_that_the_drafts_schema_refuses_are_reported_invalid_with_their_pointer(
    lifecycle: Lifecycle, folder: Path
) -> None:
    requests = [cancellation(d) for d in range(4)]
    without = cancellation(20, "documents_filed")
    del without["facts"]["cancellation"]["workload_percent"]
    ids = log_decisions(_store(lifecycle), folder, "cancellation-fees", [*requests, without])
    drop_workload_percent(folder)
    result = lifecycle.impact("cancellation-fees", draft=str(folder / "cancellation-fees.yaml"))
    assert (result["replayed"], result["invalid"], result["failed"]) == (5, 4, 0)
    assert result["unchanged"] == 1  # the one without the field decides as before
    [kind] = result["invalid_facts"]
    assert kind["pointer"] == "/facts/cancellation/workload_percent"
    assert kind["count"] == 4 and set(kind["decisions"]) <= set(ids[:4])


def _order(customer_id: str, name: str, phone: str) -> dict[str, Any]:
    return {
        "facts": {
            "order": {
                "id": f"O-{customer_id}",
                "total": 5980,
                "sequence": 1,
                "customer": {
                    "id": customer_id,
                    "name": name,
                    "postal_code": "150-0002",
                    "phone": phone,
                    "email": f"{customer_id.lower()}@example.jp",
                    "address": "東京都渋谷区渋谷2-1-1",
                },
                "payment": {"method": "credit_card"},
                "shipping": {"cod_available": True},
            }
        },
        "at": "2024-10-01T10:00:00+09:00",
    }


CUSTOMERS = [("C-501", "青木 誠", "03-1111-2222"), ("C-502", "森 花子", "03-1111-3333")]
NEW_ENTRY = "- {id: BL-900, customer_id: C-502, name: 森 花子}\n"


@pytest.mark.parametrize("kind", ["yaml", "csv"])
def test_a_new_data_set_changes_exactly_the_decisions_it_matches(
    lifecycle: Lifecycle, folder: Path, kind: str
) -> None:
    requests = [_order(*c) for c in CUSTOMERS for _ in range(3)]
    ids = log_decisions(_store(lifecycle), folder, "order-holds", requests)
    shipped = (folder / "data" / "blacklist.yaml").read_text(encoding="utf-8")
    if kind == "yaml":
        new = folder.parent / "new-blacklist.yaml"
        new.write_text(shipped + NEW_ENTRY, encoding="utf-8")
    else:
        new = folder.parent / "new-blacklist.csv"
        new.write_text("id,customer_id,name\nBL-900,C-502,森 花子\n", encoding="utf-8")
    result = lifecycle.impact("order-holds", draft=None, data={"blacklist": new})
    assert result["after"]["data"] == {"blacklist": str(new)}
    assert result["after"]["label"].endswith("+ new data")
    assert (result["replayed"], result["changed"]) == (6, 3)
    assert [c["decision_id"] for c in result["changes"]] == ids[3:]
    assert all(
        c["after"]["held"] is True and c["before"]["held"] is False for c in result["changes"]
    )
    assert result["rules"]["newly_fire"] == {"blacklisted-customer": 3}


def test_a_file_of_requests_or_of_logged_decisions_can_be_replayed(
    lifecycle: Lifecycle, folder: Path, tmp_path: Path
) -> None:
    lines = [orjson.dumps(cancellation(d)) for d in range(9)]
    lines.insert(3, b"{not json")
    source = tmp_path / "requests.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    result = lifecycle.impact("cancellation-fees", draft=str(_five_days(folder)), file=str(source))
    assert (result["replayed"], result["changed"], result["failed"]) == (10, 2, 1)
    [failure] = result["failures"]
    assert failure["code"] == "json_invalid" and failure["decisions"] == ["line-4"]


def test_a_sample_replays_about_that_many_decisions(lifecycle: Lifecycle, folder: Path) -> None:
    log_decisions(
        _store(lifecycle), folder, "cancellation-fees", [cancellation(d % 15) for d in range(300)]
    )
    result = lifecycle.impact("cancellation-fees", draft=str(_five_days(folder)), sample=30)
    assert result["scanned"] == 300
    assert 10 <= result["replayed"] <= 60


def test_the_report_is_the_same_across_processes(
    lifecycle: Lifecycle, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_decisions(
        _store(lifecycle), folder, "cancellation-fees", [cancellation(d % 12) for d in range(48)]
    )
    draft = str(_five_days(folder))
    here = lifecycle.impact("cancellation-fees", draft=draft)
    monkeypatch.setattr(impact, "CHUNK_SEQS", 5)  # ten chunks, two processes
    lifecycle.rules = type(lifecycle.rules)(workers=2)
    seen: list[int] = []
    pooled = lifecycle.impact(
        "cancellation-fees", draft=draft, on_progress=lambda done, total: seen.append(done) or False
    )
    for key in ("replayed", "changed", "unchanged", "transitions", "rules", "changes"):
        assert pooled[key] == here[key], key
    assert here["changed"] == 8 and seen[-1] == 48 and len(seen) >= 5


def test_a_replay_can_be_cancelled_from_its_progress(
    lifecycle: Lifecycle, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_decisions(
        _store(lifecycle), folder, "cancellation-fees", [cancellation(d % 12) for d in range(40)]
    )
    monkeypatch.setattr(impact, "CHUNK_SEQS", 10)
    result = lifecycle.impact(
        "cancellation-fees", draft=str(_five_days(folder)), on_progress=lambda done, total: True
    )
    assert result["cancelled"] and result["scanned"] < 40


_MARK: list[Path] = []  # set before the pool forks: the first chunk to claim it dies
_replay_chunk = impact.replay_chunk


def _killed_once(task: Any) -> Any:  # a process killed mid-chunk (kill -9, the OOM killer)
    try:
        os.close(os.open(_MARK[0], os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return _replay_chunk(task)
    os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.usefixtures("no_hang")
def test_a_replay_process_killed_mid_chunk_fails_the_report_instead_of_hanging(
    lifecycle: Lifecycle, folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_decisions(
        _store(lifecycle), folder, "cancellation-fees", [cancellation(d % 12) for d in range(24)]
    )
    monkeypatch.setattr(impact, "CHUNK_SEQS", 5)
    fork = multiprocessing.get_context("fork")  # so that the processes run the patch
    monkeypatch.setattr(impact.multiprocessing, "get_context", lambda _method: fork)
    monkeypatch.setattr(impact, "replay_chunk", _killed_once)
    monkeypatch.setattr(f"{__name__}._MARK", [tmp_path / "killed"])
    lifecycle.rules = type(lifecycle.rules)(workers=2)
    with pytest.raises(EngineFault) as caught:
        lifecycle.impact("cancellation-fees", draft=str(_five_days(folder)))
    [problem] = caught.value.diagnostics
    assert problem.code == "worker_stopped"
    assert problem.message == "a replay process stopped (killed by SIGKILL): nothing is reported"
