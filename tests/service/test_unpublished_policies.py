"""From the sandbox to the store, as docs/lifecycle.md tells users to go: `kimari serve
--watch`, `kimari publish` of one policy, then `kimari serve`. The store has publications, so
nothing is bootstrapped; a policy file it never published is not served, and says so: in
the log at start, in `GET /v1/policies` (`unpublished`) and in the hint of its 404. With no
approval required it is published on start instead. And an approval answered by the sandbox
says that it is recorded, not served."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine.cli.main import main
from tests.service.server_process import ADMIN_TOKEN, DECIDE_TOKEN, Server, copy_project

NG = {"order": {"total": 15000, "sequence": 1, "payment": {"method": "np"}, "np": {"result": "ng"}}}
TITLE = ("en: NP credit check}", "en: The NP credit check}")


def test_the_sandbox_s_approval_is_recorded_not_served_and_kimari_serve_names_what_it_lacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policies = copy_project(tmp_path)
    store = tmp_path / "var" / "kimari.sqlite3"
    sandbox = Server(policies, store, watch=True)  # tokens: one approval is required
    try:
        sandbox.start()
        flags = ["--store", str(store), "--policies", str(policies)]
        assert main(["publish", "np-check", "--as", "alice", *flags]) == 0
        assert "pending" in capsys.readouterr().out
        path = policies / "np-check.yaml"
        path.write_text(path.read_text(encoding="utf-8").replace(*TITLE), encoding="utf-8")
        with sandbox.client(ADMIN_TOKEN) as admin:
            answer = admin.post("/v1/policies/np-check/revisions/1:approve")
            assert answer.status_code == 200, answer.text
            approval = answer.json()
            assert approval["publication"]["kind"] == "approval"
            assert (approval["served"], approval["served_from"]) == (False, "files")
            assert approval["note"].startswith("recorded in the store, not served")
            # the sandbox goes on serving the file as saved, not what was approved
            deadline = time.monotonic() + 30
            while True:
                decided = admin.post("/v1/decisions/np-check", json={"facts": NG}).json()
                if decided["policy"]["revision"] != approval["publication"]["revision"]:
                    break
                assert time.monotonic() < deadline, decided
                time.sleep(0.1)
            assert decided["policy"].get("publication") is None  # a file, no publication
            listed = admin.get("/v1/policies").json()
            assert listed["served_from"] == "files" and "unpublished" not in listed
    finally:
        sandbox.stop()

    served = Server(policies, store)  # kimari serve: the store's publications
    try:
        served.start()
        with served.client(DECIDE_TOKEN) as client:
            listed = client.get("/v1/policies").json()
            assert [p["id"] for p in listed["policies"]] == ["np-check"]
            assert listed["unpublished"] == [
                {"id": "blacklist-check", "file": "policies/blacklist-check.yaml"}
            ]
            answer = client.post("/v1/decisions/blacklist-check", json={"facts": NG})
            assert answer.status_code == 404 and answer.json()["code"] == "unknown_policy"
            assert answer.json()["hint"] == (
                "policies/blacklist-check.yaml is not published in the store, so it is not "
                "served: publish it (kimari publish blacklist-check)"
            )
            described = client.get("/v1/policies/blacklist-check").json()
            assert "kimari publish blacklist-check" in described["hint"]
            unknown = client.post("/v1/decisions/no-such-policy", json={"facts": NG}).json()
            assert "is not published" not in unknown.get("hint", "")
            assert client.post("/v1/decisions/np-check", json={"facts": NG}).status_code == 200
        log = "\n".join(served.errors)
        assert "1 policy files of" in log and "have no publication in the store" in log
        assert (
            "blacklist-check.yaml: policy 'blacklist-check' has no publication in the store: it "
            "is not served (404 unknown_policy) until it is published; kimari publish "
            "blacklist-check, then kimari approve blacklist-check@N as another principal"
        ) in log
    finally:
        served.stop()

    # no approval required: the policy never published is published on start, as an empty
    # store's policies are
    relaxed = Server(policies, store, env={"KIMARI_APPROVALS_REQUIRED": "0"})
    try:
        relaxed.start()
        with relaxed.client(DECIDE_TOKEN) as client:
            listed = client.get("/v1/policies").json()
            assert sorted(p["id"] for p in listed["policies"]) == ["blacklist-check", "np-check"]
            assert listed["unpublished"] == []
        assert any("bootstrap: published blacklist-check@1" in line for line in relaxed.errors)
    finally:
        relaxed.stop()
