"""The service under failure: kill -9, a worker dying mid-request, hot reload of policies."""

from __future__ import annotations

import contextlib
import re
import shutil
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest

from engine.cli.main import main
from engine.store.decisions import DecisionLog
from tests.service.server_process import DECIDE_TOKEN, copy_project, running

NG = {"order": {"total": 15000, "sequence": 1, "payment": {"method": "np"}, "np": {"result": "ng"}}}
AT = "2024-09-21T23:59:59+09:00"


def _stream(url: str, acknowledged: list[str], stop: threading.Event) -> None:
    """Post decisions until told to stop or the server goes away; keep the ids answered 200."""
    headers = {"Authorization": f"Bearer {DECIDE_TOKEN}"}
    with httpx.Client(base_url=url, headers=headers, timeout=5) as client:
        while not stop.is_set():
            try:
                answer = client.post("/v1/decisions/np-check", json={"facts": NG, "at": AT})
            except httpx.HTTPError:
                return  # the server was killed
            if answer.status_code == 200:
                acknowledged.append(answer.json()["decision_id"])


def test_every_acknowledged_decision_survives_kill_9_of_the_whole_server(tmp_path: Path) -> None:
    policies = copy_project(tmp_path)
    acknowledged: list[str] = []
    stop = threading.Event()
    with running(tmp_path, workers=2, policies=policies) as server:
        clients = [
            threading.Thread(target=_stream, args=(server.url, acknowledged, stop))
            for _ in range(6)
        ]
        for client in clients:
            client.start()
        deadline = time.monotonic() + 20
        while len(acknowledged) < 300 and time.monotonic() < deadline:
            time.sleep(0.02)
        server.kill()  # SIGKILL to the front and every worker, mid-stream
        stop.set()
        for client in clients:
            client.join(10)
    assert len(acknowledged) >= 300
    # restart on the same store
    with running(tmp_path, workers=1, policies=policies) as server, server.client() as client:
        assert client.get(f"/v1/decisions/{acknowledged[-1]}").status_code == 200
    decision_log = DecisionLog(tmp_path / "var" / "kimari.sqlite3")
    try:
        missing = [i for i in acknowledged if decision_log.get(i) is None]
    finally:
        decision_log.close()
    assert missing == []


def test_an_exception_inside_a_request_is_a_500_with_a_logged_id_and_the_worker_lives_on(
    tmp_path: Path,
) -> None:
    env = {"KIMARI_TEST_FAULTS": "1"}
    with running(tmp_path, workers=1, env=env) as server, server.client() as client:
        before = client.get("/metrics").text
        answer = client.post(
            "/v1/decisions/np-check",
            json={"facts": NG, "at": AT},
            headers={"X-Kimari-Test-Fault": "raise"},
        )
        assert answer.status_code == 500, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        problem = answer.json()
        assert problem["code"] == "internal_error"
        assert "Traceback" not in answer.text and "injected" not in answer.text
        error_id = problem["error_id"]
        assert error_id in problem["detail"]
        # the same worker answers the next request
        assert (
            client.post("/v1/decisions/np-check", json={"facts": NG, "at": AT}).status_code == 200
        )
        after = client.get("/metrics").text
        assert worker_pids(after) == worker_pids(before) and len(worker_pids(after)) == 1
        assert "kimari_worker_restarts_total 0" in after
        assert 'kimari_http_errors_total{status="500",code="internal_error"} 1' in after
    logged = "\n".join(server.errors)
    assert f"internal error {error_id} on DECIDE" in logged
    assert "RuntimeError: an injected fault" in logged  # the trace is in the server log


def worker_pids(metrics: str) -> dict[str, str]:
    return dict(re.findall(r'kimari_worker_info\{worker="(\d+)",pid="(\d+)"\} 1', metrics))


def test_a_worker_dying_mid_request_gets_a_retriable_503_and_is_replaced(tmp_path: Path) -> None:
    env = {"KIMARI_TEST_FAULTS": "1"}
    with running(tmp_path, workers=2, env=env) as server, server.client() as client:
        for fault in ("exit", "segv"):
            answer = client.post(
                "/v1/decisions/np-check",
                json={"facts": NG, "at": AT},
                headers={"X-Kimari-Test-Fault": fault},
            )
            assert answer.status_code == 503, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.headers["retry-after"] == "1"
            assert answer.json()["code"] == "worker_crashed"
            assert answer.json()["retriable"] is True
            # the service keeps answering while the slot restarts
            for _ in range(5):
                assert client.post("/v1/decisions/np-check", json={"facts": NG}).status_code == 200
            server.wait_ready(2, timeout=60)
        metrics = client.get("/metrics").text
        assert "kimari_worker_restarts_total 2" in metrics
        assert "kimari_workers_ready 2" in metrics
        assert 'kimari_http_errors_total{status="503",code="worker_crashed"} 2' in metrics
    assert any("died with signal 11" in line for line in server.errors)


def test_a_worker_that_hangs_is_killed_and_the_client_gets_503(tmp_path: Path) -> None:
    env = {"KIMARI_TEST_FAULTS": "1", "KIMARI_REQUEST_TIMEOUT": "1"}
    with running(tmp_path, workers=1, env=env) as server, server.client() as client:
        answer = client.post(
            "/v1/decisions/np-check", json={"facts": NG}, headers={"X-Kimari-Test-Fault": "hang"}
        )
        assert answer.status_code == 503
        assert answer.json()["code"] == "worker_timeout"
        server.wait_ready(1, timeout=60)
        assert client.post("/v1/decisions/np-check", json={"facts": NG}).status_code == 200


def _revision(client: httpx.Client) -> str:
    answer = client.post("/v1/decisions/np-check", json={"facts": NG, "at": AT})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["policy"]["revision"])


def _served(client: httpx.Client) -> set[tuple[str, str]]:
    """(revision, status) of np-check on every worker, from /metrics."""
    found = set()
    for line in client.get("/metrics").text.splitlines():
        if line.startswith('kimari_policy_info{policy="np-check"'):
            inner = line[line.index("{") + 1 : line.index("}")]
            labels = dict(part.split("=", 1) for part in inner.split(","))
            found.add((labels["revision"].strip('"'), labels["status"].strip('"')))
    return found


def _save(path: Path, text: str) -> None:
    """Save as many editors do: write a temporary file, then rename it over the old one."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def _wait_for(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_hot_reload_serves_a_valid_edit_and_refuses_an_invalid_one(tmp_path: Path) -> None:
    policies = copy_project(tmp_path)
    path = policies / "np-check.yaml"
    original = path.read_text(encoding="utf-8")
    failures: list[str] = []
    stop = threading.Event()

    def keep_deciding(url: str) -> None:  # no request may be dropped while reloading
        headers = {"Authorization": f"Bearer {DECIDE_TOKEN}"}
        with httpx.Client(base_url=url, headers=headers, timeout=10) as c:
            while not stop.is_set():
                answer = c.post("/v1/decisions/np-check", json={"facts": NG})
                if answer.status_code != 200:
                    failures.append(f"{answer.status_code} {answer.text}")

    with running(tmp_path, workers=2, policies=policies) as server, server.client() as client:
        first = _revision(client)
        background = threading.Thread(target=keep_deciding, args=(server.url,))
        background.start()
        try:
            _save(
                path,
                original.replace("注文二回目以降のため要対応", "注文二回目以降のため要対応です"),
            )
            # workers reload on their own: wait until both serve the edit
            _wait_for(lambda: len(_served(client)) == 1 and first not in dict(_served(client)))
            second = _revision(client)
            for _ in range(4):  # every worker serves the new revision
                assert _revision(client) == second

            broken = original.replace("order.np.result ==", "order.np.reslt ==", 1)
            _save(path, broken)
            _wait_for(lambda: _served(client) == {(second, "refused")})
            status = client.get("/v1/policies/np-check").json()
            assert status["revision"] == second, server.errors
            error = status["errors"][0]
            assert error["code"] == "unknown_fact_field"
            assert error["location"]["file"].endswith("np-check.yaml")
            assert (
                error["location"]["line"]
                == broken.splitlines().index(
                    next(line for line in broken.splitlines() if "reslt" in line)
                )
                + 1
            )
            assert "np-check.yaml:" in status["error_text"][0]
            for _ in range(4):
                assert _revision(client) == second
            _wait_for(lambda: any("edit refused" in line for line in server.errors))
            assert any("np-check.yaml:" in line and "reslt" in line for line in server.errors)
            metrics = client.get("/metrics").text
            refused = 'kimari_policy_reloads_total{policy="np-check",result="refused"} 1'
            assert refused in metrics, (metrics, server.errors)
        finally:
            stop.set()
            background.join(10)
    assert failures == [], server.errors


def test_a_decision_keeps_its_explanation_after_its_policy_and_data_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The log names the revision; the store keeps its source and the data version."""
    policies = copy_project(tmp_path)
    path = policies / "blacklist-check.yaml"
    customer = {"name": "山田　太郎", "postal_code": "１２３４５６７", "phone": "0399999999"}
    order = {"total": 1000, "sequence": 1, "payment": {"method": "card"}, "customer": customer}
    facts = {"order": order}
    with running(tmp_path, workers=1, policies=policies) as server, server.client() as client:
        before = client.post("/v1/decisions/blacklist-check", json={"facts": facts, "at": AT})
        assert before.status_code == 200, before.text
        old = before.json()
        assert old["fired"] == ["blacklist-similar"]
        _save(path, path.read_text(encoding="utf-8").replace("類似顧客", "類似の顧客"))
        data = policies / "data" / "blacklist.yaml"
        _save(data, data.read_text(encoding="utf-8").replace("山田 太郎", "山田 次郎"))

        def edited() -> bool:
            answer = client.post("/v1/decisions/blacklist-check", json={"facts": facts}).json()
            return bool(answer["policy"]["revision"] != old["policy"]["revision"])

        _wait_for(edited)
        now = client.post("/v1/decisions/blacklist-check", json={"facts": facts}).json()
        assert now["fired"] == [] and now["data"] != old["data"]  # the edit is served

        logged = client.get(f"/v1/decisions/{old['decision_id']}").json()
    assert "explanation_unavailable" not in logged, logged
    assert logged["policy"] == old["policy"]
    verdicts = {r["rule"]: r["verdict"] for r in logged["explanation"]["rules"]}
    assert verdicts == {"blacklist-similar": "applied"}
    derived = {d["name"]: d["value"] for d in logged["explanation"]["derived"]}
    assert derived["similar_entry"]["id"] == "BL-1"  # the entry as it was, not as it is

    # The store alone is enough: `kimari log --explain` needs no policies folder.
    shutil.rmtree(policies.parent)
    store = str(tmp_path / "var" / "kimari.sqlite3")
    assert main(["log", "--store", store, "--id", old["decision_id"], "--explain"]) == 0
    text = capsys.readouterr().out
    assert "✓ blacklist-similar (HB-2) applied" in text and "blacklist-check.yaml:21:5" in text
    assert (
        main(["log", "--store", store, "--id", old["decision_id"], "--explain", "--format", "json"])
        == 0
    )
    # the same explanation; over HTTP, files are named within the project, not on the server
    local = capsys.readouterr().out.replace(f"{policies.parent}/", "")
    assert orjson.loads(local)[0]["explanation"] == logged["explanation"]
    assert main(["log", "--store", store, "--explain"]) == 2  # one decision at a time


def test_the_http_front_is_restarted_if_it_dies(tmp_path: Path) -> None:
    import os
    import signal

    with running(tmp_path, workers=1) as server, server.client() as client:
        front = server.front_pid()
        assert front is not None
        os.kill(front, signal.SIGKILL)  # the front only: the supervisor above it stays
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, server.errors
            if server.front_pid() not in (None, front):
                with contextlib.suppress(httpx.HTTPError):
                    if client.get("/healthz").json() == {"status": "ok"}:
                        break
            time.sleep(0.1)
        server.wait_ready(1)
        assert client.post("/v1/decisions/np-check", json={"facts": NG}).status_code == 200
    assert any("HTTP front" in line and "signal 9" in line for line in server.errors)
