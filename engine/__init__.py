"""kimari: business rulebooks as YAML policies, compiled into durable_rules.

The public API (see engine.api): `load`, `decide`, `validate_paths`, `run_tests`.
"""

# Registered here so that every entry point knows `kind: flow` (compiler and test runner).
from engine import flow_compile, flow_tester  # noqa: F401
from engine.api import decide, load, run_tests, validate_paths
from engine.decision import Decision
from engine.errors import (
    Diagnostic,
    EngineFault,
    EvaluationError,
    InputError,
    KimariError,
    Location,
    PolicyError,
    UsageError,
)

__all__ = [
    "Decision",
    "Diagnostic",
    "EngineFault",
    "EvaluationError",
    "InputError",
    "KimariError",
    "Location",
    "PolicyError",
    "UsageError",
    "decide",
    "load",
    "run_tests",
    "validate_paths",
]
