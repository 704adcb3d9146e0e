"""Issues through the pipeline's own functions, on SQLite and PostgreSQL: a recorded OOM incident opens one, its
events, review, escalation, analysis and actions link to it; an operator acknowledges it; it resolves when quiet
for issues.resolveAfter (a controlled clock), not while its events wait for a review; it reopens when it recurs;
closing and reopening by hand, and the transitions its state does not allow."""

from __future__ import annotations

import sys
from datetime import timedelta

import pytest
from helpers import FIXTURES
from helpers.journal import BASE_USEC
from sqlalchemy import func, select

from macha.config import load_settings
from macha.core.states import IssueStatus
from macha.monitor.checks.journal import run_check
from macha.monitor.collect.journal import JournalSource
from macha.read.errors import NotFound, ReadError, UnknownHost
from macha.read.hosts import list_hosts
from macha.read.issues import get_issue, list_issues
from macha.review.issues import IssueError, acknowledge, close, reopen, resolve_quiet
from macha.review.run import run_review
from macha.store.db import Store
from macha.store.models import Escalation, Issue, IssueAudit, Review, TriggerEvent, utcnow

sys.path.insert(0, str(FIXTURES))
from make_fixtures import OOM_INCIDENT  # noqa: E402

DAY_USEC = 86_400 * 10**6


def _check(store, settings, source) -> None:
    run_check(store, settings, hostname="h1", source=JournalSource.file(source))


def _issue(store, issue_id) -> Issue:
    with store.session() as s:
        row = s.get(Issue, issue_id)
        s.expunge(row)
        return row


def _audit(store, issue_id) -> list[tuple[str, str]]:
    with store.session() as s:
        return [(a.event, a.actor) for a in s.execute(
            select(IssueAudit).where(IssueAudit.issue_id == issue_id).order_by(IssueAudit.id)).scalars()]


def test_an_incident_opens_an_issue_that_is_acknowledged_resolves_when_quiet_and_reopens_when_it_recurs(
        db_url, make_journal, tmp_path) -> None:
    store = Store(db_url)
    settings = load_settings(state_dir=tmp_path / "s", hostname="h1", issues={"resolve_after": "1h"})
    _check(store, settings, FIXTURES / "oom.journal")
    outcome = run_review(store, "h1", settings=settings)
    assert outcome.status == "critical" and outcome.issue_id is not None
    issue_id = outcome.issue_id

    # Its events, its review and the escalation the review asked for carry its id.
    with store.session() as s:
        events = s.execute(select(TriggerEvent).where(TriggerEvent.hostname == "h1")).scalars().all()
        assert events and {e.issue_id for e in events} == {issue_id}
        assert s.get(Review, outcome.review_id).issue_id == issue_id
        assert s.get(Escalation, outcome.escalation_id).issue_id == issue_id
    issue = _issue(store, issue_id)
    assert issue.status == IssueStatus.OPEN and issue.severity == "critical" and issue.event_count >= len(events)
    assert "postgres" in issue.title
    assert [i.id for i in list_issues(store)] == [issue_id]

    detail = get_issue(store, issue_id)
    kinds = [t.kind for t in detail.timeline]
    assert {"event", "review", "analysis", "state"} <= set(kinds)
    assert kinds.index("event") < kinds.index("review")  # time order: the recorded events came first
    assert detail.timeline == sorted(detail.timeline, key=lambda t: t.time)

    # Acknowledged by an operator; a second acknowledgement is told who did it.
    assert acknowledge(store, issue_id, "alice").status == IssueStatus.ACKNOWLEDGED
    with pytest.raises(IssueError, match=r"issue \d+ is acknowledged by alice at .* nothing to acknowledge"):
        acknowledge(store, issue_id, "bob")
    assert [i.id for i in list_issues(store)] == [issue_id]  # acknowledged issues are still listed

    # The review is fresh and critical: not quiet yet, although the recorded events are years old.
    now = utcnow()
    assert resolve_quiet(store, settings, now=now) == []
    assert resolve_quiet(store, settings, now=now + timedelta(minutes=59)) == []
    assert resolve_quiet(store, settings, now=now + timedelta(hours=2)) == [issue_id]
    issue = _issue(store, issue_id)
    assert issue.status == IssueStatus.RESOLVED and issue.resolved_by == "macha"
    assert list_issues(store) == [] and [i.id for i in list_issues(store, include_resolved=True)] == [issue_id]
    with pytest.raises(IssueError, match="is resolved by macha .*nothing to acknowledge"):
        acknowledge(store, issue_id, "alice")

    # It recurs two days later (same groups): the same issue opens again.
    _check(store, settings, make_journal(OOM_INCIDENT, name="again.journal", start_usec=BASE_USEC + 2 * DAY_USEC))
    second = run_review(store, "h1", settings=settings)
    assert second.issue_id == issue_id
    issue = _issue(store, issue_id)
    assert issue.status == IssueStatus.OPEN and issue.reopened == 1 and issue.acknowledged_by is None
    assert _audit(store, issue_id) == [("opened", "macha"), ("acknowledged", "alice"), ("resolved", "macha"),
                                       ("reopened", "macha")]

    # And again: while its new events wait for a review (the model may be down), it is not quiet.
    _check(store, settings, make_journal(OOM_INCIDENT, name="third.journal", start_usec=BASE_USEC + 4 * DAY_USEC))
    assert resolve_quiet(store, settings, now=now + timedelta(hours=3)) == []
    assert run_review(store, "h1", settings=settings).issue_id == issue_id
    assert resolve_quiet(store, settings, now=now + timedelta(hours=3)) == [issue_id]
    with store.session() as s:
        assert s.execute(select(func.count()).select_from(Issue)).scalar() == 1
        linked = s.execute(select(func.count()).where(TriggerEvent.issue_id == issue_id)).scalar()
        assert linked == s.execute(select(func.count()).select_from(TriggerEvent)).scalar()
    store.dispose()


def test_operators_close_and_reopen_and_bad_transitions_are_one_clear_error(db_url, tmp_path) -> None:
    store = Store(db_url)
    settings = load_settings(state_dir=tmp_path / "s", hostname="h1")
    _check(store, settings, FIXTURES / "oom.journal")
    issue_id = run_review(store, "h1", settings=settings).issue_id

    with pytest.raises(IssueError, match="give a reason"):
        close(store, issue_id, "bob", "  ")
    with pytest.raises(IssueError, match="is open: nothing to reopen"):
        reopen(store, issue_id, "bob")
    closed = close(store, issue_id, "bob", "raised the memory limit")
    assert closed.status == IssueStatus.RESOLVED and closed.resolved_by == "bob"
    assert closed.resolve_reason == "raised the memory limit"
    with pytest.raises(IssueError, match="is resolved by bob .*nothing to close"):
        close(store, issue_id, "carol", "again")
    opened = reopen(store, issue_id, "carol")
    assert opened.status == IssueStatus.OPEN and opened.reopened == 1 and opened.resolved_by is None
    # Reopened by hand: quiet again only resolveAfter after that.
    assert resolve_quiet(store, settings, now=utcnow() + timedelta(minutes=30)) == []
    assert _audit(store, issue_id)[-2:] == [("closed", "bob"), ("reopened", "carol")]

    for bad in (issue_id + 1000, "abc", 0, 2**70):
        with pytest.raises(NotFound) as err:  # the read layer's error (a MachaError too)
            get_issue(store, bad)
        assert "\n" not in str(err.value) and "issue" in str(err.value)
    with pytest.raises(IssueError, match="no issue with id 99999"):
        acknowledge(store, 99999, "alice")
    with pytest.raises(ReadError, match="severity: 'dire' is not one of critical, high"):
        list_issues(store, severity="dire")
    with pytest.raises(UnknownHost, match="no host named 'h2' in the store .known: h1."):
        list_issues(store, hostname="h2")
    # The fleet listing (macha-systems, MCP) counts a host's open and acknowledged issues.
    assert {h.hostname: h.open_issues for h in list_hosts(store)} == {"h1": 1}
    close(store, issue_id, "bob", "done")
    assert {h.hostname: h.open_issues for h in list_hosts(store)} == {"h1": 0}

    # The audit log is append-only in the database itself.
    with pytest.raises(Exception, match="append-only"):
        with store.session() as s:
            s.execute(IssueAudit.__table__.delete())
    store.dispose()


def test_the_analysis_its_diagnostics_and_its_actions_belong_to_the_issue(tmp_path, fake, systemctl) -> None:
    from fakes.ollama import tool_call, valid_analysis

    from macha.llm.factory import make_backend
    from macha.meta.analysis import run_escalation
    from macha.store.models import Action

    settings = load_settings(state_dir=tmp_path / "s", hostname="h1", ollama_url=fake.url, memory={"enable": False},
                             autonomy_level="suggest")
    store = Store(settings.effective_database_url)
    systemctl.set_units({"postgresql.service": {"load": "loaded", "active": "failed", "sub": "failed"}})
    _check(store, settings, FIXTURES / "oom.journal")
    outcome = run_review(store, "h1", settings=settings)  # the rules reviewer: critical, escalated
    fake.push({"tool_calls": [tool_call("run_diagnostic", name="df_h")]},
              {"content": valid_analysis(proposed_actions=[{"action": "restart_service",
                                                            "arguments": {"unit": "postgresql.service"},
                                                            "reason": "it was killed by the OOM killer"}])})
    analysed = run_escalation(store, settings, outcome.escalation_id, make_backend(settings))
    assert analysed.status == "done" and analysed.actions
    with store.session() as s:
        actions = s.execute(select(Action).order_by(Action.id)).scalars().all()
        # The review's restart (pending approval; the analysis's equal proposal merged into it) and the
        # diagnostic the analysis ran.
        assert [(a.action, a.proposer.split(":")[0], a.merged_count) for a in actions] == [
            ("restart_service", "review", 1), ("run_diagnostic", "meta", 0)]
        assert {a.issue_id for a in actions} == {outcome.issue_id}
    timeline = get_issue(store, outcome.issue_id).timeline
    (analysis,) = [t for t in timeline if t.kind == "analysis"]
    assert analysis.status == "done" and "nginx keeps dying" in analysis.text
    steps = [(t.id, t.status, t.detail["actor"].split(":")[0]) for t in timeline if t.kind == "action"]
    restart, diagnostic = (a.id for a in actions)
    assert steps == [(restart, "queued", "review"), (diagnostic, "scheduled", "meta"), (restart, "merged", "meta")]
    assert [t.text for t in timeline if t.kind == "action"][0].startswith("restart_service unit=postgresql.service: ")
    # The diagnostic runs on the host: its run is in the issue's timeline too.
    from macha.actions.executor import execute

    assert execute(store, settings, diagnostic).status == "succeeded"
    steps = [(t.id, t.status) for t in get_issue(store, outcome.issue_id).timeline if t.kind == "action"]
    assert steps[-2:] == [(diagnostic, "started"), (diagnostic, "executed")]
    store.dispose()


def test_repeats_that_join_a_reviewed_group_keep_its_issue_open(tmp_path, make_journal) -> None:
    """A repeat within the grouping window adds to its group (no new event, no review): the issue is still not
    quiet until resolveAfter after the group's last repeat."""
    import time

    settings = load_settings(state_dir=tmp_path / "s", hostname="h1", issues={"resolve_after": "1h"},
                             grouping={"window": 3000})
    store = Store(settings.effective_database_url)
    start = int(time.time() * 1e6)
    _check(store, settings, make_journal(OOM_INCIDENT, name="first.journal", start_usec=start))
    issue_id = run_review(store, "h1", settings=settings).issue_id
    now = utcnow()
    # The same lines 40 minutes later: repeats of the reviewed groups.
    _check(store, settings, make_journal(OOM_INCIDENT, name="later.journal", start_usec=start + 2400 * 10**6))
    with store.session() as s:
        assert s.execute(select(func.count()).where(TriggerEvent.review_id.is_(None))).scalar() == 0
        assert s.execute(select(func.max(TriggerEvent.count))).scalar() == 2
    assert resolve_quiet(store, settings, now=now + timedelta(minutes=70)) == []
    assert _issue(store, issue_id).last_event_at > now + timedelta(minutes=39)
    assert resolve_quiet(store, settings, now=now + timedelta(minutes=105)) == [issue_id]
    store.dispose()


def test_the_window_lists_the_tracked_issues_by_id(tmp_path) -> None:
    from macha.context.window import build_window

    settings = load_settings(state_dir=tmp_path / "s", hostname="h1")
    store = Store(settings.effective_database_url)
    _check(store, settings, FIXTURES / "oom.journal")
    issue_id = run_review(store, "h1", settings=settings).issue_id
    acknowledge(store, issue_id, "alice")
    text = build_window(store, "h1", 8000).text
    assert f"tracked issue #{issue_id} [critical] acknowledged since " in text and "acknowledged by alice" in text
    close(store, issue_id, "alice", "fixed")
    assert f"tracked issue #{issue_id}" not in build_window(store, "h1", 8000).text
    store.dispose()
