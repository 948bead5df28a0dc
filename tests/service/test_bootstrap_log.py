"""The line `kimari serve` logs when it bootstraps an empty store shows its URL without the
password (deployment.md: never printed, *** in logs); it printed the URL as given."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from engine.service import supervisor


class _Lifecycle:
    def __init__(self, store: str) -> None:
        self.store = store

    def __enter__(self) -> _Lifecycle:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def require(self, _approvals: int) -> None:
        return None

    def bootstrap(self, _folder: Path) -> list[str]:
        return ["published cancellation-fees@1"]


def test_the_bootstrap_line_redacts_the_store_password(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import engine.lifecycle.workflow as workflow

    monkeypatch.setattr(workflow, "Lifecycle", _Lifecycle)
    config: Any = SimpleNamespace(
        store="postgresql://kimari:s3cretpw@127.0.0.1:5432/k", approvals=1, policies="policies"
    )
    with caplog.at_level(logging.INFO):
        supervisor._bootstrap(config)
    text = caplog.text
    assert "was empty: published the policies" in text
    assert "s3cretpw" not in text and "postgresql://kimari:***@127.0.0.1:5432/k" in text
