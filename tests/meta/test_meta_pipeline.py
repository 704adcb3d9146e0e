"""Layer 4 with real workers: priorities on the gpu queue (real Redis, the real gpu worker), macha-chat and
macha-approve discuss end to end against the fake model server, and what happens with no gpu worker."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from helpers import FIXTURES
from helpers.processes import VENV_BIN, macha_env, run_cli, wait_for
from fakes.ollama import tool_call, valid_analysis
from sqlalchemy import select
from fakes.systemctl import FakeSystemctl

from macha.config import load_settings
from macha.review.escalation import request
from macha.store.db import Store
from macha.store.models import Action, ChatMessage, Conversation, Escalation
from workers.app import create_app, send_escalate

pytestmark = pytest.mark.timeout(300)


def _hostname(state_dir) -> str:
    return f"t{os.getpid()}-{state_dir.name[-8:]}"


def test_critical_work_and_chat_overtake_queued_background_analyses(state_dir, macha_ai, fake, redis_url) -> None:
    hostname = _hostname(state_dir)
    fake.default = {"delay": 1.0, "content": valid_analysis()}
    env = macha_env(state_dir, MACHA_HOSTNAME=hostname, MACHA_OLLAMA_URL=fake.url, MACHA_BROKER_URL=redis_url)
    settings = load_settings(hostname=hostname, state_dir=state_dir, ollama_url=fake.url, broker_url=redis_url)
    store = Store(settings.effective_database_url)
    celery = create_app(settings)
    with store.session() as s:
        background = [request(s, settings, hostname, f"background analysis {i}", kind="background").id
                      for i in range(20)]
        critical = request(s, settings, hostname, "CRITICAL: postgres was OOM-killed", kind="critical").id
    ai = macha_ai(env, "--no-beat", "--queues", "gpu")
    ai.wait_ready()
    for esc_id in background:
        send_escalate(celery, esc_id, "background")
    wait_for(lambda: len(fake.chats()) >= 1, 30, "the first background analysis to start")
    asker = subprocess.Popen([str(VENV_BIN / "macha-chat"), "--ask", "Is the disk filling up?", "--host", hostname],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: _questions(store) == 1, 60, "the chat question to be sent")
    # The worker is busy with a background analysis (the fake model takes a second); everything else waits.
    # Counted by claims, not by model calls: a task builds its prompt before it calls the model.
    started = sum(_status(store, e) != "requested" for e in background)
    send_escalate(celery, critical, "critical")
    wait_for(lambda: len(fake.chats()) >= 22, 120, "all analyses and the chat answer")
    out, err = asker.communicate(timeout=60)
    assert asker.returncode == 0, err

    order = []
    for chat in fake.chats():
        text = chat["messages"][1]["content"] + chat["messages"][-1]["content"]
        if "CRITICAL: postgres was OOM-killed" in text:
            order.append("critical")
        elif "Is the disk filling up?" in text:
            order.append("chat")
        else:
            order.append("background")
    print(f"order on the gpu queue (critical sent after {started} background analyses had started):", order)
    # The running analysis finishes; the worker holds no other message (one process, prefetch 1), except one it
    # may have taken off the queue and not yet claimed when the critical escalation was sent. Then the critical
    # escalation (sent last), then the chat, then the remaining background work.
    first = order.index("critical")
    assert order[:first] == ["background"] * first and started <= first <= started + 1, (started, order)
    assert order[first:first + 2] == ["critical", "chat"]
    assert order.count("background") == 20 and order[first + 2:].count("background") >= 10
    wait_for(lambda: {_status(store, e) for e in background + [critical]} == {"done"}, 60, "every analysis stored")
    assert ai.stop() == 0
    store.dispose()


def test_macha_chat_ask_streams_the_answer_and_stores_the_conversation(state_dir, macha_ai, fake) -> None:
    hostname = _hostname(state_dir)
    env = macha_env(state_dir, MACHA_HOSTNAME=hostname, MACHA_OLLAMA_URL=fake.url)
    fake.push({"tool_calls": [tool_call("list_pending_approvals")]},
              {"content": "Nothing waits for approval and memory looks fine. No action needed."})
    ai = macha_ai(env, "--no-beat")
    ai.wait_ready()
    proc = run_cli("macha-chat", "--ask", "Anything I should approve?", env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Nothing waits for approval and memory looks fine." in proc.stdout
    assert "[tool] list_pending_approvals" in proc.stderr
    # Streamed: the fake sends the answer in 7-character pieces, the CLI printed them as they came.
    settings = load_settings(hostname=hostname, state_dir=state_dir)
    store = Store(settings.effective_database_url)
    with store.session() as s:
        msgs = s.execute(select(ChatMessage).order_by(ChatMessage.id)).scalars().all()
        assert [(m.role, m.status) for m in msgs] == [("user", "answered"), ("assistant", "answered")]
        assert msgs[1].transcript[0]["tool"] == "list_pending_approvals" and msgs[1].model == "qwen3:14b"
    assert [c["stream"] for c in fake.chats()] == [True, True]
    assert ai.stop() == 0
    store.dispose()


def test_discussing_a_pending_approval_gives_the_model_the_approval(state_dir, macha_ai, fake, systemctl) -> None:
    hostname = _hostname(state_dir)
    env = macha_env(state_dir, MACHA_HOSTNAME=hostname, MACHA_OLLAMA_URL=fake.url)
    settings = load_settings(hostname=hostname, state_dir=state_dir)
    store = Store(settings.effective_database_url)
    from macha.actions.proposals import propose

    with store.session() as s:
        proposal = propose(s, settings, hostname, {"action": "restart_service", "arguments": {"unit": "nginx"},
                                                   "reason": "nginx failed three times tonight"}, proposer="test")
    assert proposal.status == "pending"
    fake.default = {"content": "Restarting nginx is reasonable: it failed on its own and holds no state."}
    ai = macha_ai(env, "--no-beat")
    ai.wait_ready()
    proc = run_cli("macha-approve", "discuss", str(proposal.action_id), env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Restarting nginx is reasonable" in proc.stdout
    (chat,) = fake.chats()
    context = chat["messages"][1]["content"]
    assert f"approval #{proposal.action_id} on {hostname}: restart_service" in context
    assert "nginx failed three times tonight" in context and "<<<DATA the approval being discussed>>>" in context
    with store.session() as s:
        conv = s.execute(select(Conversation)).scalar_one()
        assert conv.approval_id == proposal.action_id and conv.title.startswith("approval #")
    assert ai.stop() == 0
    store.dispose()


def test_a_model_server_that_is_down_is_one_clear_line(state_dir, macha_ai, fake) -> None:
    hostname = _hostname(state_dir)
    env = macha_env(state_dir, MACHA_HOSTNAME=hostname, MACHA_OLLAMA_URL=fake.url, MACHA_LLM__RETRIES="0")
    fake.close()
    ai = macha_ai(env, "--no-beat")
    ai.wait_ready()
    proc = run_cli("macha-chat", "--ask", "How is memory?", env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("macha-chat: ") and f"Ollama at {fake.url} is not reachable" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert ai.stop() == 0


def test_without_a_gpu_worker_work_waits_and_is_shown_as_pending(state_dir, macha_ai, fake) -> None:
    hostname = _hostname(state_dir)
    env = macha_env(state_dir, MACHA_HOSTNAME=hostname, MACHA_OLLAMA_URL=fake.url)
    settings = load_settings(hostname=hostname, state_dir=state_dir)
    store = Store(settings.effective_database_url)
    with store.session() as s:
        esc_id = request(s, settings, hostname, "the review model could not explain repeated segfaults").id
    ai = macha_ai(env, "--no-beat", "--queues", f"host.{hostname},review")
    ai.wait_ready()
    send_escalate(create_app(settings), esc_id, "escalation")
    proc = run_cli("macha-chat", "--ask", "Hello?", "--timeout", "6", env=env, timeout=120)
    assert proc.returncode == 2 and "no gpu worker started answering within 6 s" in proc.stderr
    oom = FIXTURES / "oom.journal"
    # --hostname: the recorded journal is filed under this test's host (else under its own _HOSTNAME).
    check = run_cli("macha-check", "--local", "--json", "--journal-file", str(oom), "--hostname", hostname,
                    env={**env, "MACHA_LLM__BACKEND": "none"}, timeout=120)
    report = json.loads(check.stdout)
    # Ours waits, and the OOM this check found was escalated too (the rules reviewer calls it critical).
    waiting = {e["id"]: (e["status"], e["kind"]) for e in report["escalations"]}
    assert waiting[esc_id] == ("requested", "escalation") and ("requested", "critical") in waiting.values()
    assert ai.stop() == 0
    # The queued work is still there: a gpu worker started now answers both.
    fake.default = {"content": valid_analysis()}
    gpu = macha_ai(env, "--no-beat", "--queues", "gpu")
    gpu.wait_ready()
    wait_for(lambda: _status(store, esc_id) == "done", 60, "the escalation to be analysed")
    with store.session() as s:
        question = s.execute(select(ChatMessage).where(ChatMessage.role == "user")).scalar_one()
    wait_for(lambda: _message_status(store, question.id) == "answered", 60, "the queued chat question")
    assert gpu.stop() == 0
    store.dispose()


def _questions(store: Store) -> int:
    with store.session() as s:
        return len(s.execute(select(ChatMessage.id).where(ChatMessage.role == "user")).all())


def _status(store: Store, esc_id: int) -> str:
    with store.session() as s:
        return s.get(Escalation, esc_id).status


def _message_status(store: Store, message_id: int) -> str:
    with store.session() as s:
        return s.get(ChatMessage, message_id).status


def test_the_analysis_proposal_reaches_macha_approve(state_dir, macha_ai, fake, tmp_path, monkeypatch) -> None:
    """An escalation analysed by the gpu worker: its proposed restart is an approval under suggest."""
    hostname = _hostname(state_dir)
    stand_in = FakeSystemctl(tmp_path / "bin")
    env = macha_env(state_dir, MACHA_HOSTNAME=hostname, MACHA_OLLAMA_URL=fake.url,
                    PATH=f"{stand_in.bindir}:{VENV_BIN}:{os.environ['PATH']}")
    settings = load_settings(hostname=hostname, state_dir=state_dir)
    store = Store(settings.effective_database_url)
    with store.session() as s:
        esc_id = request(s, settings, hostname, "nginx keeps failing", kind="critical").id
    fake.default = {"content": valid_analysis(proposed_actions=[
        {"action": "restart_service", "arguments": {"unit": "nginx.service"}, "reason": "restore service"}])}
    ai = macha_ai(env, "--no-beat")
    ai.wait_ready()
    send_escalate(create_app(settings), esc_id, "critical")
    wait_for(lambda: _status(store, esc_id) == "done", 60, "the analysis")
    listed = json.loads(run_cli("macha-approve", "list", "--json", env=env, timeout=60).stdout)
    assert [(a["action"], a["arguments"]) for a in listed] == [("restart_service", {"unit": "nginx.service"})]
    with store.session() as s:
        action = s.execute(select(Action)).scalar_one()
        assert action.evidence["escalation_id"] == esc_id and action.proposer == "meta:qwen3:14b"
    assert ai.stop() == 0
    store.dispose()
