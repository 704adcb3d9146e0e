"""A fleet on this machine, all real parts: three collectors (`macha-ai --role collector`, each with its own host
name, journal directory and systemctl stand-in), one brain and one gpu worker (with the fake model), sharing one
PostgreSQL database and one Redis server whose URLs they read from files (brokerUrlFile, databaseUrlFile).

Events are stored under the host that logged them; an approved restart for host B runs on B only; host C's
collector killed in the middle of a batch is "silent" within silentAfter (3 intervals), and once restarted it
catches up from its cursor (nothing lost) and is cleared; `macha-systems list -o json` lists the fleet."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from fakes.systemctl import FakeSystemctl
from helpers.journal import Entry, append_journal
from helpers.processes import macha_env, run_cli, wait_for
from sqlalchemy import func, select

from macha.store.db import Store
from macha.store.models import Action, Host, LogEvent, TriggerEvent

pytestmark = pytest.mark.timeout(300)
#: Seconds between a collector's checks and beats; silentAfter is left at its default, 3 of them.
INTERVAL = 4
SYSTEMD = {"identifier": "systemd", "pid": 1, "uid": 0, "transport": "journal", "unit": "init.scope"}
#: Lines C logs while it is being read and while its collector is down (error priority, no pattern: each is
#: kept as a log event of its own, none raised).
BATCH = 400


class Member:
    """One `macha-ai` of the fleet: its role, host name, state, journal directory and systemctl stand-in."""

    def __init__(self, root: Path, role: str, hostname: str, shared: dict[str, str], **extra: str):
        self.role, self.hostname = role, hostname
        self.dir = root / hostname
        self.journal = self.dir / "journal"
        self.journal.mkdir(parents=True)
        append_journal(self.journal, [Entry(f"{hostname}: boot", priority=6)])
        self.systemctl = FakeSystemctl(self.dir / "bin")
        self.env = macha_env(self.dir / "state", **{
            "MACHA_HOSTNAME": hostname, "MACHA_JOURNAL_DIRECTORY": str(self.journal),
            "MACHA_TRIGGER_INTERVAL": str(INTERVAL), "MACHA_REVIEW_INTERVAL": str(INTERVAL),
            "MACHA_AUTONOMY_LEVEL": "suggest", "MACHA_LLM__BACKEND": "none", "MACHA_WORKER_CONCURRENCY": "1",
            **shared, **extra})
        self.env["PATH"] = f"{self.systemctl.bindir}:{self.env['PATH']}"
        self.ai = None

    def start(self, macha_ai):
        self.ai = macha_ai(self.env, "--role", self.role)
        return self

    def log(self) -> str:
        return self.ai.log.read_text(errors="replace")


def restarts(member: Member) -> list[list[str]]:
    return member.systemctl.calls("restart")


def test_a_fleet_of_collectors_a_brain_and_a_gpu_worker(tmp_path, pg_url, redis_url, macha_ai, fake) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    (secrets / "broker").write_text(redis_url + "\n")
    (secrets / "database").write_text(pg_url + "\n")
    shared = {"MACHA_BROKER_URL_FILE": str(secrets / "broker"), "MACHA_DATABASE_URL_FILE": str(secrets / "database")}
    tag = uuid.uuid4().hex[:6]
    a, b = (Member(tmp_path, "collector", f"fleet-{tag}-{n}", shared) for n in "ab")
    # C reads 50 lines at a time: it is killed in the middle of a long batch.
    c = Member(tmp_path, "collector", f"fleet-{tag}-c", shared, MACHA_JOURNAL_BATCH_SIZE="50")
    brain = Member(tmp_path, "brain", f"fleet-{tag}-brain", shared)
    gpu = Member(tmp_path, "gpu", f"fleet-{tag}-gpu", shared, MACHA_LLM__BACKEND="ollama",
                 MACHA_OLLAMA_URL=fake.url)
    # The brain first: it migrates the shared database (the others wait on its lock if they race it).
    for member in (brain, gpu, a, b, c):
        member.start(macha_ai)
    for member in (brain, gpu, a, b, c):
        member.ai.wait_ready(120)
    store = Store(pg_url)

    def events(hostname: str, pattern: str | None = None) -> list[TriggerEvent]:
        with store.session() as s:
            q = select(TriggerEvent).where(TriggerEvent.hostname == hostname)
            if pattern:
                q = q.where(TriggerEvent.pattern_id == pattern)
            return list(s.execute(q.order_by(TriggerEvent.id)).scalars())

    def host(hostname: str) -> Host:
        with store.session() as s:
            return s.execute(select(Host).where(Host.hostname == hostname)).scalar_one()

    # Each host logs its own problem; each is stored under that host, and only there.
    append_journal(a.journal, [Entry("worker crashed: Segmentation fault (core dumped)", priority=3)])
    append_journal(b.journal, [Entry("nginx.service: Failed with result 'exit-code'.", priority=3, **SYSTEMD)])
    append_journal(c.journal, [Entry("cache index corrupted, rebuilding from scratch", priority=3)])
    wait_for(lambda: events(a.hostname) and events(b.hostname) and events(c.hostname), 60,
             "each collector to store its host's event")
    assert "Segmentation fault" in events(a.hostname)[0].trigger_reason
    assert "nginx.service" in events(b.hostname)[0].trigger_reason
    assert "corrupted" in events(c.hostname)[0].trigger_reason
    for member in (brain, gpu):
        assert events(member.hostname) == []

    # B's failed nginx: the brain's review proposes a restart, an operator approves it, and it runs on B alone.
    def proposed() -> int | None:
        with store.session() as s:
            return s.execute(select(Action.id).where(Action.hostname == b.hostname)).scalar()

    action = wait_for(proposed, 60, "the review of B to propose the restart")
    approved = run_cli("macha-approve", "approve", str(action), env=brain.env, timeout=60)
    assert approved.returncode == 0, approved.stderr
    wait_for(lambda: restarts(b), 60, "the restart to run on B")
    assert restarts(b) == [["systemctl", "restart", "--", "nginx.service"]]
    for member in (a, c, brain, gpu):
        assert restarts(member) == [], member.hostname

    # The gpu worker answers a question about B with the (fake) meta model; nothing else asked that model.
    asked = run_cli("macha-chat", "--ask", "why did nginx fail?", "--host", b.hostname, "--timeout", "60",
                    env=gpu.env, timeout=90)
    assert asked.returncode == 0 and asked.stdout.strip(), asked.stderr
    assert [path for path, _ in fake.requests if path == "/api/chat"]

    # C is reading a long batch (50 lines a read) when its collector is killed, every process of it at once.
    assert host(c.hostname).silent_since is None and host(c.hostname).beat_at is not None
    append_journal(c.journal, [Entry(f"fleet batch line {i}: request handler returned an error", priority=3)
                               for i in range(BATCH // 2)])

    def kept() -> int:
        with store.session() as s:
            return s.execute(select(func.count()).select_from(LogEvent).where(
                LogEvent.hostname == c.hostname, LogEvent.message.like("fleet batch line %"))).scalar_one()

    wait_for(lambda: kept() > 0, 60, "C to start on the batch")
    c.ai.kill_hard()
    killed_at = time.monotonic()
    read_before = kept()
    # More lines while it is down: nobody reads them yet.
    append_journal(c.journal, [Entry(f"fleet batch line {i}: request handler returned an error", priority=3)
                               for i in range(BATCH // 2, BATCH)])
    silent = wait_for(lambda: events(c.hostname, "host_silent"), 6 * INTERVAL, "the brain to call C silent")
    noticed = time.monotonic() - killed_at
    assert len(silent) == 1 and silent[0].severity == "high" and "is silent" in silent[0].trigger_reason
    # silentAfter is 3 intervals, counted from C's last beat (up to one interval before the kill); the brain
    # looks every interval.
    assert noticed <= 3 * INTERVAL + INTERVAL + 3, noticed
    assert host(c.hostname).silent_since is not None
    assert kept() == read_before  # nothing reads C's journal while it is down
    for member in (a, b):
        assert events(member.hostname, "host_silent") == [] and host(member.hostname).silent_since is None

    # C again: it resumes from its cursor, reads every line once, beats, and is cleared.
    c.start(macha_ai).ai.wait_ready(120)
    wait_for(lambda: kept() == BATCH, 90, "C to catch up on its journal")
    back = wait_for(lambda: events(c.hostname, "host_back"), 6 * INTERVAL, "the brain to clear C")
    assert back[0].severity == "info" and host(c.hostname).silent_since is None
    with store.session() as s:
        lines = s.execute(select(LogEvent.message).where(LogEvent.hostname == c.hostname,
                                                         LogEvent.message.like("fleet batch line %"))).scalars()
        assert sorted(int(m.split()[3].rstrip(":")) for m in lines) == list(range(BATCH))  # each once

    # The registry, as an operator reads it.
    listed = run_cli("macha-systems", "list", "-o", "json", env=brain.env, timeout=60)
    assert listed.returncode == 0, listed.stderr
    rows = {r["hostname"]: r for r in json.loads(listed.stdout)}
    for member in (a, b, c, brain, gpu):
        row = rows[member.hostname]
        assert row["macha_roles"] == [member.role], row
        assert row["last_seen"] and row["os"] and row["kernel"] and row["macha_version"], row
    for member in (a, b, c):
        assert rows[member.hostname]["last_beat"] and rows[member.hostname]["silent_since"] is None
    assert rows[brain.hostname]["last_beat"] is None  # only collectors beat

    # A collector loads none of what it never needs (the guard looks in every worker process of it).
    for member in (a, b, c):
        log = member.log()
        assert "no model client, Chroma, ONNX runtime, tiktoken or Jinja loaded (pool process ready)" in log
        assert [line for line in log.splitlines() if "collector process" in line and "no model client" not in line
                ] == []  # the warning a heavy import would give, at start or after the tasks that ran
    store.dispose()
    for member in (a, b, c, brain, gpu):
        assert member.ai.stop() == 0, member.log()[-2000:]
