"""kimari's test suite: folders mirror the packages of engine/ (see docs/architecture.md)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
