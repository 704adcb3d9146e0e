"""Test helpers (not fixtures: those are in conftest.py): paths, the servers the tests use, journal files, real
Macha processes, hostile text."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
FIXTURES = TESTS / "fixtures"
#: Loghub's labelled samples, beside the repository (../shared/data/loghub).
LOGHUB = TESTS.parents[1] / "shared" / "data" / "loghub"
