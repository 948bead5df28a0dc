"""How a job's process is started (the jobs themselves run in tests/service/test_lifecycle_api.py
and, on PostgreSQL, tests/service/test_replicas.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from engine.lifecycle import jobs
from engine.store.revisions import Job

URL = "postgresql://kimari:s3cret@db.example/kimari"


class _Revisions:
    location = URL

    def start_job(
        self, kind: str, policy_id: str, principal: str, params: Mapping[str, Any]
    ) -> Job:
        return Job("j1", kind, policy_id, "running", principal, 0, 0, None, 0, 0, None, params)


class _Process:
    started: list[tuple[list[str], dict[str, str]]] = []  # noqa: RUF012  # one test's record

    def __init__(self, args: list[str], *, env: dict[str, str], **_kw: Any) -> None:
        self.started.append((args, env))

    def wait(self) -> int:
        return 0


def test_a_job_process_is_given_the_store_in_its_environment_never_on_its_command_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A PostgreSQL URL may hold a password: every user of the machine may read a command
    line, only the owner an environment."""
    monkeypatch.setattr(jobs.subprocess, "Popen", _Process)
    job = jobs.start(_Revisions(), "impact", "p", "alice", {})  # type: ignore[arg-type]
    [(args, env)] = _Process.started
    assert args[-3:] == ["-m", "engine.lifecycle.jobs", job.id]
    assert not any("s3cret" in arg for arg in args)
    assert env[jobs.STORE_ENV] == URL


def test_a_job_process_without_its_store_says_how_to_run_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(jobs.STORE_ENV, raising=False)
    assert jobs.main(["jobs", "j1"]) == 2
    assert f"{jobs.STORE_ENV}=STORE" in capsys.readouterr().err
