"""Fixtures shared by the whole suite."""

from __future__ import annotations

import pytest

from engine.project.project import Project
from tests.strategies import shipped_project


@pytest.fixture(scope="session")
def project() -> Project:
    """The shipped policies of policies/, compiled once (tests that need another project
    define their own `project`)."""
    return shipped_project()
