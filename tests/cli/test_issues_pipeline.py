"""Issues with the real pipeline: `macha-check` of the recorded OOM through a running `macha-ai` opens an issue that
`macha-issues` shows, and the worker's periodic reconciler resolves it once quiet for issues.resolveAfter."""

from __future__ import annotations

import json
import os

import pytest
from helpers import FIXTURES
from helpers.processes import macha_env, run_cli, wait_for

pytestmark = pytest.mark.timeout(300)


def test_the_reconciler_resolves_a_quiet_issue(state_dir, macha_ai) -> None:
    env = macha_env(state_dir, MACHA_HOSTNAME=f"t{os.getpid()}-{state_dir.name[-8:]}",
                    MACHA_ISSUES__RESOLVE_AFTER="2s")
    ai = macha_ai(env)
    ai.wait_ready()
    proc = run_cli("macha-check", "--journal-file", str(FIXTURES / "oom.journal"), env=env)
    assert proc.returncode == 1, proc.stderr

    listed = json.loads(run_cli("macha-issues", "list", "--all", "-o", "json", env=env).stdout)
    assert len(listed) == 1 and listed[0]["severity"] == "critical" and listed[0]["status"] in ("open", "resolved")
    issue_id = listed[0]["id"]
    # Beat sends macha.reconcile every minute; the issue has been quiet for 2 s by then.
    wait_for(lambda: run_cli("macha-issues", "list", "-q", env=env).stdout.split() == [], 150,
             "the reconciler to resolve the issue", interval=5)
    detail = json.loads(run_cli("macha-issues", "show", str(issue_id), "-o", "json", env=env).stdout)
    assert detail["status"] == "resolved" and detail["resolved_by"] == "macha"
    assert [t["status"] for t in detail["timeline"] if t["kind"] == "state"] == ["opened", "resolved"]
    assert ai.stop() == 0
