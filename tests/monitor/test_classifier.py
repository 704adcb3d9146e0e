"""The optional trigger-model classifier: unmatched error lines, one call per batch of templates, verdicts kept per
template, a budget of calls a minute, and an unreachable model said once while Layer 1 carries on."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from helpers.journal import Entry
from sqlalchemy import select

from macha.config import load_settings
from macha.llm.factory import make_backend
from macha.monitor.checks.journal import run_check
from macha.monitor.checks.registry import CHECKS
from macha.monitor.collect.journal import JournalSource
from macha.monitor.detect.classifier import classify_host
from macha.monitor.templates import forget_miners
from macha.store.db import Store
from macha.store.models import ClassifiedTemplate, ClassifierCall, TriggerEvent

#: A disk line no pattern names (the catalog knows smartd's own wordings): the model's to judge.
DISK = "smartd[{pid}]: Device: /dev/sda [SAT], vendor log page 0x30 reports {n} retries on head 2"
CRON = "CRON[{pid}]: (root) error (grandchild #{n} failed with exit status 1)"


def _recent(make_journal, entries: list[Entry], name: str):
    """A journal of lines from a minute ago: the classifier looks back `lookback` (1h)."""
    return JournalSource.file(make_journal(entries, name=name, start_usec=int((time.time() - 60) * 1e6)))


def _lines(n: int, start: int = 0) -> list[Entry]:
    out = []
    for i in range(start, start + n):
        out.append(Entry(DISK.format(pid=100 + i, n=8 + i), priority=3, identifier="smartd", transport="syslog"))
        out.append(Entry(CRON.format(pid=200 + i, n=i), priority=3, identifier="CRON", transport="syslog"))
    return out


@pytest.fixture
def host(tmp_path, make_journal, fake):
    forget_miners()
    settings = load_settings(hostname="h1", state_dir=tmp_path / "s", ollama_url=fake.url, use_trigger_model=True,
                             classifier={"calls_per_minute": 2, "batch_size": 20})
    store = Store(settings.effective_database_url)
    run_check(store, settings, source=_recent(
        make_journal, _lines(5) + [Entry("Out of memory: Killed process 9 (x) total-vm:1kB", priority=3)], "a.journal"))
    yield store, settings
    store.dispose()


def _answer(*items: tuple[int, str, str]) -> dict:
    return {"content": json.dumps({"items": [{"id": i, "severity": s, "reason": r} for i, s, r in items]})}


def test_one_call_per_batch_of_templates_and_verdicts_become_events(host, fake) -> None:
    store, settings = host
    fake.push(_answer((1, "high", "a disk is failing"), (2, "ignore", "a cron job's own business")))
    result = classify_host(store, settings, "h1", make_backend(settings))
    (chat,) = fake.chats()
    prompt = chat["messages"][0]["content"]
    # Ten lines, two templates: one call, each template once; the OOM line has its pattern and is not asked.
    assert result.scanned == 10 and result.calls == 1 and result.classified == 2
    assert prompt.count("smartd[") == 1 and prompt.count("CRON[") == 1 and "Out of memory" not in prompt
    assert chat["model"] == "qwen3:1.7b" and chat["format"]["title"] == "Verdicts"
    # Templates are asked in the order they were first seen, numbered: the disk line is 1, as scripted.
    assert "\n1: smartd[" in prompt and "\n2: CRON[" in prompt
    with store.session() as s:
        verdicts = {v.verdict for v in s.execute(select(ClassifiedTemplate)).scalars()}
        events = s.execute(select(TriggerEvent).where(TriggerEvent.trigger_type == "classifier")).scalars().all()
    assert verdicts == {"high", "ignore"}
    assert [(e.severity, e.count) for e in events] == [("high", 5)]
    assert "classified high by qwen3:1.7b (a disk is failing)" in events[0].trigger_reason


def test_later_lines_of_a_known_template_need_no_call(host, fake, make_journal) -> None:
    store, settings = host
    fake.push(_answer((1, "high", "disk"), (2, "ignore", "cron")))
    classify_host(store, settings, "h1", make_backend(settings))
    again = classify_host(store, settings, "h1", make_backend(settings))
    assert again.scanned == 0 and again.calls == 0  # the read position moved past what was classified
    run_check(store, settings, source=_recent(make_journal, _lines(3, start=50), "b.journal"))
    third = classify_host(store, settings, "h1", make_backend(settings))
    assert third.scanned == 6 and third.calls == 0 and len(fake.chats()) == 1
    with store.session() as s:
        counts = [e.count for e in s.execute(select(TriggerEvent).where(TriggerEvent.trigger_type == "classifier"))
                  .scalars()]
    assert sum(counts) == 8  # 5 + 3 disk lines, in the group; the cron lines stay quiet


def test_the_budget_caps_calls_a_minute_and_the_rest_waits(host, fake, make_journal) -> None:
    store, base = host
    settings = base.model_copy(update={"classifier": base.classifier.model_copy(update={"batch_size": 1,
                                                                                        "calls_per_minute": 1})})
    fake.default = _answer((1, "low", "meh"))
    result = classify_host(store, settings, "h1", make_backend(settings))
    assert result.calls == 1 and result.classified == 1 and result.waiting == 5
    assert "budget of 1 call(s) a minute reached; 1 template(s) wait" in result.notes[0]
    assert _classified_lines(store) == 1  # the first disk line; the rest waits behind the first cron line
    # Nothing skipped, nothing raised twice: the waiting lines are read again next time, still within the budget.
    later = classify_host(store, settings, "h1", make_backend(settings))
    assert later.scanned == 9 and later.calls == 0 and later.raised == [] and later.repeats == 0
    assert _classified_lines(store) == 1
    with store.session() as s:  # a minute later
        for call in s.execute(select(ClassifierCall)).scalars():
            call.time -= timedelta(minutes=2)
    done = classify_host(store, settings, "h1", make_backend(settings))
    assert done.calls == 1 and done.waiting == 0
    assert _classified_lines(store) == 10  # every line once: 5 disk and 5 cron lines, both "low"


def _classified_lines(store: Store) -> int:
    with store.session() as s:
        return sum(s.execute(select(TriggerEvent.count).where(TriggerEvent.trigger_type == "classifier")).scalars())


def test_an_unreachable_model_is_said_once_and_layer_1_carries_on(host, fake, make_journal) -> None:
    store, base = host
    settings = base.model_copy(update={"llm": base.llm.model_copy(update={"retries": 0})})
    fake.close()
    first = classify_host(store, settings, "h1", make_backend(settings))
    assert len(first.notes) == 1 and "trigger model is unreachable, Layer 1 carries on without it" in first.notes[0]
    second = classify_host(store, settings, "h1", make_backend(settings))
    assert second.notes == [] and second.waiting == 10
    # The check itself is untouched by the outage.
    check = run_check(store, settings, source=_recent(make_journal, _lines(1, start=90), "c.journal"))
    assert check.new_log_events == 2


def test_the_classifier_is_off_unless_asked(tmp_path) -> None:
    settings = load_settings(hostname="h1", state_dir=tmp_path)
    assert settings.use_trigger_model is False
    assert CHECKS["classify"].run(None, settings, "h1").result == {"hostname": "h1",
                                                                    "skipped": "useTriggerModel is false"}


def test_lines_a_pattern_matched_are_never_sent_to_the_classifier(tmp_path, make_journal, fake) -> None:
    forget_miners()
    settings = load_settings(hostname="h1", state_dir=tmp_path / "s", ollama_url=fake.url, use_trigger_model=True)
    store = Store(settings.effective_database_url)
    # Error-priority lines of a pattern: one event group, and its repeats have no trigger row of their own.
    failed = [Entry("nginx.service: Failed with result 'exit-code'.", priority=3, identifier="systemd",
                    transport="journal") for _ in range(3)]
    run_check(store, settings, source=_recent(make_journal, failed, "a.journal"))
    result = classify_host(store, settings, "h1", make_backend(settings))
    assert result.scanned == 0 and fake.chats() == []
    store.dispose()
