"""kimari: business rulebooks as YAML policies, compiled into durable_rules.

The public API lives in `engine.api` (`load`, `decide`, `validate_paths`, `run_tests`, ...).
This module only names it: each name is imported on first use, so that importing a leaf
such as `engine.lang.calendar` or the HTTP front loads nothing else of the engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_HOMES = {
    "decide": "engine.api",
    "load": "engine.api",
    "open_lifecycle": "engine.api",
    "run_tests": "engine.api",
    "validate_paths": "engine.api",
    "Decision": "engine.runtime.decision",
    "Diagnostic": "engine.core.errors",
    "EngineFault": "engine.core.errors",
    "EvaluationError": "engine.core.errors",
    "InputError": "engine.core.errors",
    "KimariError": "engine.core.errors",
    "Location": "engine.core.errors",
    "PolicyError": "engine.core.errors",
    "UsageError": "engine.core.errors",
}

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
    "open_lifecycle",
    "run_tests",
    "validate_paths",
]

if TYPE_CHECKING:
    from engine.api import decide, load, open_lifecycle, run_tests, validate_paths
    from engine.core.errors import (
        Diagnostic,
        EngineFault,
        EvaluationError,
        InputError,
        KimariError,
        Location,
        PolicyError,
        UsageError,
    )
    from engine.runtime.decision import Decision


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
