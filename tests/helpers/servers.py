"""The PostgreSQL and Redis servers the tests use, and what happens when one is missing."""

from __future__ import annotations

import os

import pytest

PG_ADMIN_URL = os.environ.get("MACHA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("MACHA_TEST_REDIS", "redis://127.0.0.1:6379/13")
# CI sets this: a missing server is then a failure, not a skip.
REQUIRE = os.environ.get("MACHA_TEST_REQUIRE_SERVICES") == "1"


def unavailable(what: str) -> None:
    if REQUIRE:
        pytest.fail(f"{what} is not available and MACHA_TEST_REQUIRE_SERVICES=1")
    pytest.skip(f"{what} is not available")
