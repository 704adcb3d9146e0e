"""Layer 4 in-process: the meta model's tool loop against the fake Ollama server (scripted tool calls), its
limits, refusals, storage, the policy on its proposals, dedup of escalations, and the review-model fallback."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from helpers.journal import Entry
from fakes.ollama import tool_call, valid_analysis
from sqlalchemy import select

from macha import pipeline
from macha.actions.executor import execute
from macha.config import load_settings
from macha.context.window import build_window
from macha.core.followups import FollowUps
from macha.llm.base import LLMUnavailable
from macha.llm.factory import make_backend
from macha.meta.analysis import run_escalation
from macha.monitor.checks.journal import run_check
from macha.monitor.collect.journal import JournalSource
from macha.review.escalation import issue_key, request
from macha.store.db import Store
from macha.store.models import Action, Escalation

NGINX_DOWN = "nginx.service: Failed with result 'oom-kill'."


@pytest.fixture
def host(tmp_path, make_journal, fake, systemctl):
    settings = load_settings(hostname="h1", state_dir=tmp_path / "s", ollama_url=fake.url,
                             memory={"enable": False}, meta={"max_tool_calls": 3})
    store = Store(settings.effective_database_url)
    # A minute ago: the tools look at recent history.
    journal = make_journal([Entry(NGINX_DOWN, identifier="systemd", unit="nginx.service", priority=3,
                                  transport="journal")], start_usec=int((time.time() - 60) * 1e6))
    run_check(store, settings, source=JournalSource.file(journal))
    yield store, settings
    store.dispose()


def _escalation(store, settings, kind="critical", key=None, reason="nginx keeps failing") -> int:
    with store.session() as s:
        return request(s, settings, "h1", reason, kind=kind, key=key).id


def _esc(store, esc_id) -> Escalation:
    with store.session() as s:
        row = s.get(Escalation, esc_id)
        s.expunge(row)
        return row


def test_the_loop_calls_read_only_tools_refuses_others_and_its_restart_becomes_an_approval(host, fake) -> None:
    store, settings = host
    esc_id = _escalation(store, settings)
    fake.push(
        {"tool_calls": [tool_call("query_logs", unit="nginx", since="1h", pattern="oom")]},
        {"tool_calls": [tool_call("restart_service", unit="nginx.service"),
                        tool_call("get_metrics", name="memory_percent", range="1h")]},
        {"content": valid_analysis(proposed_actions=[
            {"action": "restart_service", "arguments": {"unit": "nginx.service"}, "reason": "bring it back",
             "risk": "low"}])},
    )
    outcome = run_escalation(store, settings, esc_id, make_backend(settings))
    assert outcome.status == "done" and outcome.tool_calls == 3, outcome.error
    chats = fake.chats()
    assert [c["model"] for c in chats] == ["qwen3:14b"] * 3
    assert {t["function"]["name"] for t in chats[0]["tools"]} == {
        "query_logs", "get_metrics", "service_status", "search_memory", "run_diagnostic", "list_pending_approvals"}
    # The tool's answer went back as fenced data, with the real log line from the store.
    second = chats[1]["messages"]
    logs = [m for m in second if m["role"] == "tool" and m.get("tool_name") == "query_logs"]
    assert logs and "<<<DATA tool query_logs result>>>" in logs[0]["content"] and NGINX_DOWN in logs[0]["content"]
    third = chats[2]["messages"]
    refused = [m for m in third if m.get("tool_name") == "restart_service"]
    assert refused and "refused" in refused[0]["content"] and "not one of your read-only tools" in refused[0]["content"]

    esc = _esc(store, esc_id)
    assert esc.status == "done" and esc.model == "qwen3:14b"
    assert esc.result["diagnosis"].startswith("nginx keeps dying") and esc.result["confidence"] == 0.7
    assert esc.result["answered_by"] == "meta model qwen3:14b"
    assert [(t["tool"], t["refused"]) for t in esc.transcript] == [
        ("query_logs", False), ("restart_service", True), ("get_metrics", False)]
    # Under suggest, the proposed restart waits for an operator, with the analysis attached; the model's "risk"
    # field counted for nothing.
    (action_id,) = [a["action_id"] for a in outcome.actions]
    with store.session() as s:
        action = s.get(Action, action_id)
        assert (action.action, action.status, action.risk) == ("restart_service", "pending", "medium")
        assert action.evidence["escalation_id"] == esc_id
        assert action.evidence["analysis"]["root_cause"].startswith("worker_connections")
        assert action.proposer == "meta:qwen3:14b"
    # And it is fed back into the next context window.
    window = build_window(store, "h1", 4000, include={"reviews"})
    assert f"meta analysis #{esc_id}" in window.text and "nginx keeps dying" in window.text


def test_the_tool_call_limit_stops_the_loop_and_the_answer_is_asked_for(host, fake) -> None:
    store, settings = host
    esc_id = _escalation(store, settings)
    greedy = {"tool_calls": [tool_call("list_pending_approvals"), tool_call("service_status", unit="nginx")]}
    fake.push(greedy, greedy, {"content": valid_analysis()})
    outcome = run_escalation(store, settings, esc_id, make_backend(settings))
    assert outcome.status == "done" and outcome.stopped == "tool_limit" and outcome.tool_calls == 3
    esc = _esc(store, esc_id)
    assert [t["refused"] for t in esc.transcript] == [False, False, False, True]
    assert "limit" in esc.transcript[-1]["result"]
    chats = fake.chats()
    # The last call asked for the answer with the schema and offered no tools.
    assert chats[-1]["format"]["title"] == "MetaAnalysis" and not chats[-1].get("tools")


def test_an_unusable_answer_is_repaired_once_then_stored_as_failed(host, fake) -> None:
    store, settings = host
    esc_id = _escalation(store, settings)
    fake.push({"content": "I think it is fine."}, {"content": "{\"diagnosis\": 3}"}, {"content": "still no"})
    outcome = run_escalation(store, settings, esc_id, make_backend(settings))
    assert outcome.status == "failed" and "unusable" in outcome.error
    esc = _esc(store, esc_id)
    assert esc.status == "failed" and "still no" in esc.result["raw"]
    assert len(fake.chats()) == 3


def test_an_escalation_of_an_issue_under_analysis_attaches_to_it(host, fake) -> None:
    store, settings = host
    key = issue_key([("unit_failed", "nginx.service")])
    first = _escalation(store, settings, key=key)
    second = _escalation(store, settings, key=key)
    other = _escalation(store, settings, key=issue_key([("oom_kill", None)]))
    assert _esc(store, second).status == "attached" and _esc(store, second).attached_to == first
    assert _esc(store, other).status == "requested"
    fake.default = {"content": valid_analysis()}
    assert run_escalation(store, settings, second, make_backend(settings)).status == "attached"
    assert run_escalation(store, settings, first, make_backend(settings)).status == "done"
    # Analysed a moment ago: the same issue escalated again attaches to the analysis.
    again = _escalation(store, settings, key=key)
    assert _esc(store, again).attached_to == first
    # A redelivered task of a finished analysis does not run it again.
    calls = len(fake.chats())
    assert run_escalation(store, settings, first, make_backend(settings)).status == "done"
    assert len(fake.chats()) == calls


def test_the_model_server_down_leaves_the_escalation_requested_for_later(host, fake) -> None:
    store, settings = host
    esc_id = _escalation(store, settings)
    fake.close()
    with pytest.raises(LLMUnavailable):
        run_escalation(store, settings, esc_id, make_backend(settings))
    esc = _esc(store, esc_id)
    assert esc.status == "requested" and "not reachable" in esc.error
    assert pipeline.escalations_to_resend(store, settings) == ([], [])  # too soon
    with store.session() as s:
        s.get(Escalation, esc_id).updated_at -= timedelta(minutes=6)
    assert pipeline.escalations_to_resend(store, settings) == ([(esc_id, "critical")], [])
    # Touched when sent: not sent again at the next reconcile.
    assert pipeline.escalations_to_resend(store, settings) == ([], [])


def test_the_review_model_may_answer_when_no_gpu_worker_does(host, fake) -> None:
    store, base = host
    settings = base.model_copy(update={"meta": base.meta.model_copy(update={"review_model_fallback": True,
                                                                            "fallback_after": 60})})
    esc_id = _escalation(store, settings)
    background = _escalation(store, settings, kind="background")
    with store.session() as s:
        for e in (esc_id, background):
            row = s.get(Escalation, e)
            row.created_at -= timedelta(minutes=5)
            row.updated_at -= timedelta(minutes=5)
    retry, fallback = pipeline.escalations_to_resend(store, settings)
    assert fallback == [(esc_id, "critical")] and retry == []
    fake.default = {"content": valid_analysis()}
    outcome = pipeline.escalate_step(store, settings, esc_id, fallback=True).result
    assert outcome["status"] == "done"
    assert {c["model"] for c in fake.chats()} == {"qwen3:4b"}
    esc = _esc(store, esc_id)
    assert esc.result["answered_by"].startswith("answered by the review model qwen3:4b, not the meta model")
    assert "answered by the review model" in fake.chats()[0]["messages"][1]["content"]


def test_a_tool_answer_is_bounded_and_a_bad_argument_is_an_answer_not_a_crash(host, fake) -> None:
    store, base = host
    settings = base.model_copy(update={"meta": base.meta.model_copy(update={"tool_result_tokens": 100})})
    with store.session() as s:
        for i in range(200):
            from macha.store.models import LogEvent, utcnow

            s.add(LogEvent(time=utcnow(), hostname="h1", severity="high", message=f"nginx: long line {i} " * 20,
                           unit="nginx.service", source="t", entry_key=f"k{i}", meta={}))
    esc_id = _escalation(store, settings)
    fake.push({"tool_calls": [tool_call("query_logs", unit="nginx", limit=50),
                              tool_call("get_metrics", name="cpu_percent", range="400d"),
                              tool_call("query_logs", pattern="x" * 1000)]},
              {"content": valid_analysis()})
    run_escalation(store, settings, esc_id, make_backend(settings))
    esc = _esc(store, esc_id)
    first, bad_range, long_pattern = esc.transcript
    from macha.context.tokens import count

    assert first["ok"] and count(first["result"]) <= 100
    assert not bad_range["ok"] and "range" in bad_range["result"] and "7d" in bad_range["result"]
    assert not long_pattern["ok"] and "pattern" in long_pattern["result"]
    assert esc.status == "done"


def test_run_diagnostic_is_policy_checked_and_scheduled_without_waiting(host, fake) -> None:
    store, settings = host
    follow = FollowUps()
    esc_id = _escalation(store, settings)
    fake.push({"tool_calls": [tool_call("run_diagnostic", name="df_h"), tool_call("run_diagnostic", name="rm_rf")]},
              {"content": valid_analysis()})
    run_escalation(store, settings, esc_id, make_backend(settings), follow=follow)
    scheduled = follow.execute
    esc = _esc(store, esc_id)
    ok, unknown = esc.transcript
    assert "scheduled on h1 as action #" in ok["result"]
    assert "not run: refused" in unknown["result"] and "unknown diagnostic" in unknown["result"]
    with store.session() as s:
        rows = s.execute(select(Action).where(Action.action == "run_diagnostic").order_by(Action.id)).scalars().all()
        assert [(r.arguments.get("name"), r.status) for r in rows] == [("df_h", "ready"), ("rm_rf", "refused")]
    assert scheduled == [(rows[0].id, "h1")]

    # Once it has run, the next analysis within minutes is answered from its output instead of running it again.
    assert execute(store, settings, rows[0].id).status == "succeeded"
    again = _escalation(store, settings, reason="disk again")
    fake.push({"tool_calls": [tool_call("run_diagnostic", name="df_h")]}, {"content": valid_analysis()})
    run_escalation(store, settings, again, make_backend(settings), follow=follow)
    (reused,) = _esc(store, again).transcript
    assert f"output of df_h (action #{rows[0].id}" in reused["result"] and "Filesystem" in reused["result"]
    assert scheduled == [(rows[0].id, "h1")]  # nothing new scheduled


class _Exploding:
    """A backend whose call fails in a way that is not the model server's: the run must not stay "running"."""

    name = "ollama"
    url = "x"

    def context_length(self, model):
        return 8192

    def chat(self, *a, **k):
        raise RuntimeError("disk on fire")


def test_a_run_that_crashes_is_marked_and_its_issue_open_again(host, fake) -> None:
    store, settings = host
    key = issue_key([("unit_failed", "nginx.service")])
    first = _escalation(store, settings, key=key)
    waiting = _escalation(store, settings, key=key, kind="critical", reason="nginx down again, now critical")
    # Attached to the first, which has not run yet: it takes the reason and the higher kind.
    assert _esc(store, waiting).status == "attached"
    assert _esc(store, first).kind == "critical" and "now critical" in _esc(store, first).reason
    with pytest.raises(RuntimeError):
        run_escalation(store, settings, first, _Exploding())
    crashed = _esc(store, first)
    assert crashed.status == "failed" and "RuntimeError: disk on fire" in crashed.error
    # The issue is not stuck behind the dead run: the next escalation of it is requested, not attached.
    assert _esc(store, _escalation(store, settings, key=key)).status == "requested"


def test_a_failed_analysis_reopens_the_escalation_attached_to_it(host, fake) -> None:
    store, settings = host
    key = issue_key([("oom_kill", None)])
    first = _escalation(store, settings, key=key)
    second = _escalation(store, settings, key=key)
    fake.default = {"content": "no idea"}
    outcome = run_escalation(store, settings, first, make_backend(settings))
    assert outcome.status == "failed" and outcome.reopened == second
    assert _esc(store, second).status == "requested" and _esc(store, second).attached_to is None


def test_an_absurd_tool_argument_is_an_answer_not_a_crash(host, fake) -> None:
    store, settings = host
    esc_id = _escalation(store, settings)
    fake.push({"tool_calls": [tool_call("query_logs", since="99999999999999999999d"),
                              tool_call("get_metrics", name=["not", "a", "string"])]},
              {"content": valid_analysis()})
    assert run_escalation(store, settings, esc_id, make_backend(settings)).status == "done"
    overflow, wrong_type = _esc(store, esc_id).transcript
    assert not overflow["ok"] and "bad arguments" in overflow["result"] and "duration" in overflow["result"]
    assert not wrong_type["ok"] and "bad arguments" in wrong_type["result"]


def test_background_analyses_do_not_pile_up_while_no_gpu_worker_runs(host) -> None:
    store, settings = host
    first_id, first_status = pipeline.request_background(store, settings, "h1")
    again_id, again_status = pipeline.request_background(store, settings, "h1")
    assert first_status == "requested" and again_status == "attached" and _esc(store, again_id).attached_to == first_id


def test_a_follow_up_chat_about_an_analysed_issue_sees_the_analysis(host, fake) -> None:
    from macha.meta import chat

    store, settings = host
    esc_id = _escalation(store, settings)
    fake.push({"content": valid_analysis()})
    run_escalation(store, settings, esc_id, make_backend(settings))
    conv = chat.start(store, "h1", escalation_id=esc_id, created_by="ops")
    question = chat.ask(store, conv, "Did lowering worker_connections help?")
    streamed: list[tuple[str, str]] = []
    fake.push({"content": "Not applied yet: the configuration still says 65535."})
    answer = chat.answer(store, settings, question, make_backend(settings),
                         publish=lambda kind, text: streamed.append((kind, text)))
    assert answer.status == "answered" and "Not applied yet" in answer.content
    context = fake.chats()[-1]["messages"][1]["content"]
    assert "<<<DATA the issue being followed up>>>" in context and "worker_connections raised to 65535" in context
    assert streamed[-1][0] == "done" and "".join(t for k, t in streamed if k == "token").startswith("Not applied")
    # Asked again (a redelivered task): answered once.
    assert chat.answer(store, settings, question, make_backend(settings), publish=lambda *a: None).status == \
        "answered" and len(fake.chats()) == 2
    with pytest.raises(chat.ChatError, match="no analysed issue #999"):
        chat.start(store, "h1", escalation_id=999)


def test_the_token_limit_stops_the_loop(host, fake) -> None:
    store, base = host
    settings = base.model_copy(update={"meta": base.meta.model_copy(update={"max_tokens": 600,
                                                                            "max_tool_calls": 8})})
    esc_id = _escalation(store, settings)
    # The fake server counts a token per 4 characters of the answer: 4,000 characters are 1,000 tokens.
    fake.push({"content": "thinking " * 445, "tool_calls": [tool_call("list_pending_approvals")]},
              {"content": valid_analysis()})
    outcome = run_escalation(store, settings, esc_id, make_backend(settings))
    assert outcome.status == "done" and outcome.stopped == "token_limit" and outcome.tool_calls == 1
    assert fake.chats()[0]["options"]["num_predict"] <= 600
