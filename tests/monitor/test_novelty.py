"""Novelty: real journal files read by real journalctl into SQLite and PostgreSQL. A template never seen on the
host, after its learning period, raises one low or medium event per unit (rate-limited) naming the template;
nothing during learning, nothing for an info line, nothing once an operator marked it benign (in-process, through
the macha-templates command run as a process, and after a restart)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.journal import Entry
from helpers.processes import macha_env, run_cli
from sqlalchemy import select

from macha.config import load_settings
from macha.monitor.checks.journal import run_check
from macha.monitor.collect.journal import JournalSource
from macha.monitor.detect import novelty
from macha.monitor.templates import forget_miners
from macha.store.db import Store
from macha.store.models import LogEvent, NoveltyTemplate, TemplateAudit, TriggerEvent

MIN = 60_000_000  # microseconds
HOUR = 60 * MIN


def settings(tmp_path: Path, **detection):
    cfg = {"novelty_learning": "1h", "novelty_rate_limit": "30m", **detection}
    return load_settings(state_dir=tmp_path / "state", hostname="h1", detection=cfg)


def novel(store: Store) -> list[TriggerEvent]:
    with store.session() as s:
        return list(s.execute(select(TriggerEvent).where(TriggerEvent.pattern_id == novelty.PATTERN_ID)
                              .order_by(TriggerEvent.id)).scalars())


def check(store, cfg, make_journal, name: str, timed: list[tuple[int, Entry]]):
    journal = make_journal([e for _, e in timed], name=name, offsets_usec=[t for t, _ in timed])
    return run_check(store, cfg, hostname="h1", source=JournalSource.file(journal))


def app(message: str, priority: int, unit: str = "billing.service") -> Entry:
    return Entry(message, priority=priority, identifier=unit.split(".")[0], unit=unit, transport="stdout")


# What the host says while it learns: routine lines, and error-ish lines it will keep saying.
LEARNING = [
    (0, app("cache refresh failed for key 17, retrying", 4)),
    (1 * MIN, app("Started nightly export job 4.", 6, "export.service")),
    (5 * MIN, app("upstream 10.0.0.7:443 timed out after 30 s", 4, "proxy.service")),
    # Never seen before, but during learning: learned, not raised.
    (20 * MIN, app("ledger lock held by pid 881 for 12 s", 3)),
]


def test_new_error_template_after_learning_raises_one_event_showing_the_template(db_url, make_journal,
                                                                                  tmp_path) -> None:
    store = Store(db_url)
    cfg = settings(tmp_path)
    check(store, cfg, make_journal, "learn.journal", LEARNING)
    assert novel(store) == []

    after = [
        # Templates learned during the learning period: nothing.
        (2 * HOUR, app("cache refresh failed for key 99, retrying", 4)),
        (2 * HOUR + MIN, app("ledger lock held by pid 1200 for 3 s", 3)),
        # Never seen, info priority, no error words: nothing.
        (2 * HOUR + 2 * MIN, app("rotated ledger archive 2024-07 into cold storage", 6, "archive.service")),
        # Never seen, error priority: one medium event for billing, naming the template.
        (2 * HOUR + 3 * MIN, app("ledger checksum mismatch in segment 42 of journal 7", 3)),
        # Another new template from billing in the same batch: folded into the same event.
        (2 * HOUR + 4 * MIN, app("ledger replay stopped at offset 99812", 3)),
        # Never seen, warning priority from another unit: its own event, low.
        (2 * HOUR + 5 * MIN, app("peer list changed while a sync was running", 4, "sync.service")),
    ]
    result = check(store, cfg, make_journal, "after.journal", after)
    events = novel(store)
    assert [(e.meta["unit"], e.severity) for e in events] == [("billing.service", "medium"), ("sync.service", "low")]
    billing, sync = events
    assert "never seen on this host before" in billing.trigger_reason
    assert "ledger checksum mismatch in segment <NUM> of journal <NUM>" in billing.trigger_reason
    assert "and 1 more new template" in billing.trigger_reason
    assert f"template {billing.meta['template_id']}" in billing.trigger_reason
    assert billing.trigger_type == novelty.TRIGGER_TYPE and billing.meta["more_new_templates"] == 1
    assert "peer list changed while a sync was running" in sync.trigger_reason
    assert result.severity_counts.get("medium", 0) >= 1 and result.severity_counts.get("low", 0) >= 1
    with store.session() as s:
        # The warning line no pattern keeps is stored for its event; the info line is not stored at all.
        kept = set(s.execute(select(LogEvent.message)).scalars())
        assert "peer list changed while a sync was running" in kept
        assert "rotated ledger archive 2024-07 into cold storage" not in kept
        line = s.execute(select(LogEvent).where(LogEvent.id == sync.log_event_id)).scalar_one()
        assert line.template_id == sync.meta["cluster_id"]
    store.dispose()


def test_no_event_while_the_host_learns_and_none_for_a_line_a_pattern_raised(db_url, make_journal,
                                                                             tmp_path) -> None:
    store = Store(db_url)
    cfg = settings(tmp_path, novelty_learning="24h")
    lines = LEARNING + [(3 * HOUR, app("ledger checksum mismatch in segment 42 of journal 7", 3))]
    check(store, cfg, make_journal, "learn.journal", lines)
    assert novel(store) == []  # still within 24 h of the first template
    # After learning, a never-seen line that a named pattern raises is that pattern's event only.
    oom = ("Out of memory: Killed process 4242 (postgres) total-vm:8123456kB, anon-rss:7000000kB, file-rss:0kB, "
           "shmem-rss:0kB, UID:71 pgtables:14000kB oom_score_adj:0")
    check(store, cfg, make_journal, "later.journal", [(30 * HOUR, Entry(oom, priority=3))])
    with store.session() as s:
        patterns = list(s.execute(select(TriggerEvent.pattern_id)).scalars())
    assert patterns == ["oom_kill"]
    store.dispose()


def test_rate_limit_benign_mark_and_restart(db_url, make_journal, tmp_path, monkeypatch, capsys) -> None:
    store = Store(db_url)
    cfg = settings(tmp_path)
    check(store, cfg, make_journal, "learn.journal", LEARNING)
    t = 2 * HOUR
    check(store, cfg, make_journal, "a.journal", [(t, app("ledger checksum mismatch in segment 42", 3))])
    assert len(novel(store)) == 1
    # Ten minutes later, another new template from billing: within the unit's 30 minutes, nothing.
    check(store, cfg, make_journal, "b.journal", [(t + 10 * MIN, app("ledger index rebuild refused: busy", 4))])
    assert len(novel(store)) == 1
    # Forty minutes later the first template again: still new, the rate limit has passed: a second event.
    check(store, cfg, make_journal, "c.journal", [(t + 40 * MIN, app("ledger checksum mismatch in segment 7", 3))])
    events = novel(store)
    assert len(events) == 2 and events[1].meta["template_id"] == events[0].meta["template_id"]
    template_id = events[0].meta["template_id"]

    # The operator marks it benign with the real command, in a process of its own.
    env = macha_env(tmp_path / "state", MACHA_DATABASE_URL=db_url, MACHA_DETECTION__NOVELTY_LEARNING="1h")
    proc = run_cli("macha-templates", "list", "-o", "json", env=env)
    listed = json.loads(proc.stdout)
    assert proc.returncode == 0 and template_id in [r["id"] for r in listed], proc.stderr
    assert {r["state"] for r in listed} == {"new"}
    proc = run_cli("macha-templates", "benign", str(template_id), "--reason", "known checksum noise", env=env)
    assert proc.returncode == 0 and f"Template {template_id}" in proc.stdout and "benign" in proc.stdout, proc.stderr
    proc = run_cli("macha-templates", "benign", "999999", env=env)
    assert proc.returncode == 2 and proc.stderr.startswith("macha-templates: there is no template 999999")
    assert "Traceback" not in proc.stderr

    # A restart: a new process checks the next file; the mark and billing's last event come back from the store
    # (the other new template, 15 minutes after that event, is within the rate limit).
    journal = make_journal([app("ledger checksum mismatch in segment 9", 3),
                            app("ledger index rebuild refused: locked", 4)], name="d.journal",
                           offsets_usec=[t + 50 * MIN, t + 55 * MIN])
    code = ("import sys; from macha.config import load_settings; from macha.store.db import Store; "
            "from macha.monitor.checks.journal import run_check; "
            "from macha.monitor.collect.journal import JournalSource; "
            "s = load_settings(hostname='h1', detection={'novelty_learning': '1h', 'novelty_rate_limit': '30m'}); "
            "r = run_check(Store(s.effective_database_url), s, hostname='h1', source=JournalSource.file(sys.argv[1])); "
            "print(r.entries_read, r.new_log_events)")
    proc = subprocess.run([sys.executable, "-c", code, str(journal)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.split() == ["2", "1"], proc.stderr
    assert len(novel(store)) == 2  # benign: learned
    # And this process restarts too: new connections, no miner in memory.
    store.dispose()
    forget_miners()
    store = Store(db_url)
    # The other new template is not benign: past the rate limit it raises.
    check(store, cfg, make_journal, "e.journal", [(t + 95 * MIN, app("ledger index rebuild refused: full", 4))])
    events = novel(store)
    assert len(events) == 3 and events[2].meta["template_id"] != template_id and events[2].severity == "low"
    with store.session() as s:
        audit = s.execute(select(TemplateAudit)).scalars().all()
        row = s.execute(select(NoveltyTemplate).where(NoveltyTemplate.benign.is_(True))).scalar_one()
    assert [(a.template_id, a.event, a.reason) for a in audit] == [(template_id, "benign", "known checksum noise")]
    assert audit[0].actor == row.benign_by and audit[0].actor and not audit[0].actor.startswith("web:")
    store.dispose()


def test_the_vocabulary_examples() -> None:
    v = novelty.vocabulary()
    for line in v.examples["error_examples"]:
        assert novelty.error_ish(6, line) and novelty.severity_of(6, line) == "low", line
    for line in v.examples["strong_examples"]:
        assert novelty.error_ish(6, line) and novelty.severity_of(6, line) == "medium", line
    for line in v.examples["plain_examples"]:
        assert not novelty.error_ish(6, line) and not novelty.error_ish(None, line), line
    assert novelty.error_ish(4, "peer list changed") and novelty.severity_of(4, "peer list changed") == "low"
    assert novelty.severity_of(2, "the UPS reports a problem") == "medium"


@pytest.mark.parametrize("off", [{"novelty": False}])
def test_novelty_off_raises_nothing(sqlite_url, make_journal, tmp_path, off) -> None:
    store = Store(sqlite_url)
    cfg = settings(tmp_path, **off)
    check(store, cfg, make_journal, "learn.journal", LEARNING)
    check(store, cfg, make_journal, "a.journal", [(2 * HOUR, app("ledger checksum mismatch in segment 42", 3))])
    assert novel(store) == []
    store.dispose()

