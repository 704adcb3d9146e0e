"""The context window: an exact token budget over sections with priorities, built from a real store each time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from sqlalchemy import delete

from macha.context import sections as sec
from macha.context.tokens import count
from macha.context.window import CUT, assemble, build_window
from macha.monitor.checks.journal import ensure_host
from macha.monitor.templates import assign_templates, forget_miners
from macha.store.db import Store
from macha.store.models import LogEvent, LogTemplate, Review, SystemMetric, TemplateState, TriggerEvent

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
SEVERITIES = ["critical", "high", "medium", "low", "info"]

line_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=300)
section_lines = st.lists(line_text, min_size=0, max_size=40)


def _content(name: str, priority: int, share: float, levels: list[list[str]]) -> sec.Content:
    return sec.Content(name, f"Section {name}", priority, share, [lambda lv=lv: lv for lv in levels])


@given(
    specs=st.lists(st.tuples(st.floats(0.01, 1.0), st.lists(section_lines, min_size=1, max_size=3)),
                   min_size=1, max_size=9),
    budget=st.integers(0, 4000),
)
@hsettings(max_examples=150, deadline=None)
def test_assembled_sections_never_exceed_the_budget(specs, budget) -> None:
    contents = [_content(f"s{i}", i, share, levels) for i, (share, levels) in enumerate(specs)]
    window = assemble("h1", contents, budget)
    assert window.tokens <= budget
    assert count(window.text) == window.tokens


def test_a_section_that_fits_is_untouched_and_spare_budget_goes_to_the_important_one() -> None:
    big = [f"event line {i} with some words to make it longer" for i in range(200)]
    contents = [
        _content("events", 1, 0.3, [big, big[:100]]),
        _content("small", 2, 0.7, [["just one line"]]),
    ]
    full = count("\n".join(big))
    window = assemble("h1", contents, full + 200)
    # "small" needed far less than its 70 %: "events" got the rest and shows all 200 lines at level 0.
    text = window.text
    assert "event line 199" in text and "just one line" in text and "cut to fit" not in text
    tight = assemble("h1", contents, 300)
    assert tight.tokens <= 300
    assert "just one line" in tight.text
    # The coarser level was tried first, then cut with a visible marker.
    assert "event line 0" in tight.text and "cut to fit the context budget" in tight.text
    assert any(n.startswith("events: level 1") for n in tight.notes)


def test_the_marker_says_how_many_lines_were_cut() -> None:
    lines = [f"line {i}" for i in range(100)]
    window = assemble("h1", [_content("only", 1, 1.0, [lines])], 80)
    shown = [x for x in window.text.splitlines() if x.startswith("line ")]
    assert CUT.format(n=100 - len(shown)) in window.text


# --- From a real store ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('window') / 'macha.db'}")
    yield store
    store.dispose()


def _clear(store: Store) -> None:
    forget_miners()
    with store.session() as s:
        for model in (TriggerEvent, LogEvent, LogTemplate, TemplateState, SystemMetric, Review):
            s.execute(delete(model))


def _add_events(store: Store, mix: list[tuple[int, str, int, int]]) -> None:
    """mix: (severity index, message, repeats, minutes ago)."""
    with store.session() as s:
        n = 0
        for sev_i, message, repeats, ago in mix:
            messages = [f"{message} {k}" for k in range(repeats)]
            tids = assign_templates(s, "h1", messages)
            for msg, tid in zip(messages, tids):
                n += 1
                t = NOW - timedelta(minutes=ago, seconds=n)
                log = LogEvent(time=t, hostname="h1", severity=SEVERITIES[sev_i], message=msg, unit="u.service",
                               source="test", entry_key=f"k{n}", template_id=tid, meta={})
                s.add(log)
                s.flush()
                s.add(TriggerEvent(time=t, hostname="h1", trigger_type="journal_pattern", trigger_reason=msg[:300],
                                   severity=SEVERITIES[sev_i], pattern_id=f"p{sev_i}", fingerprint=f"f{n}",
                                   log_event_id=log.id, meta={}))


@given(
    mix=st.lists(st.tuples(st.integers(0, 4), line_text, st.integers(1, 60), st.integers(0, 600)), max_size=12),
    budget=st.integers(64, 6000),
)
@hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_windows_over_random_event_mixes_stay_within_budget(shared_store, mix, budget) -> None:
    _clear(shared_store)
    ensure_host(shared_store, "h1", {"os": "NixOS 25.05", "kernel": "Linux 6.12"})
    _add_events(shared_store, mix)
    window = build_window(shared_store, "h1", budget, now=NOW,
                          include={"host", "events", "services", "metrics", "issues", "reviews", "history"})
    assert window.tokens <= budget
    if mix and budget >= 3000:
        assert "New events since the last review" in window.text


def test_the_window_is_the_same_after_a_restart(sqlite_url) -> None:
    store = Store(sqlite_url)
    ensure_host(store, "h1", {"os": "NixOS 25.05", "kernel": "Linux 6.12", "nixos_generation": "412"})
    _clear(store)
    _add_events(store, [(0, "Out of memory: Killed process", 3, 5), (2, "link eth0 down", 2, 90)])
    with store.session() as s:
        s.add_all(SystemMetric(time=NOW - timedelta(minutes=m), hostname="h1", metric_name="memory_percent",
                               value=50 + m, unit="%") for m in range(0, 120, 2))
    include = {"host", "events", "metrics", "history"}
    before = build_window(store, "h1", 3000, now=NOW, include=include).text
    store.dispose()
    forget_miners()
    again = Store(sqlite_url)
    after = build_window(again, "h1", 3000, now=NOW, include=include).text
    assert before == after
    assert "nixos generation: 412" in after and "memory_percent: now 50" in after
    assert "3 x Out of memory: Killed process <NUM>" in after
    again.dispose()
