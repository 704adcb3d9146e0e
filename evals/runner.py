"""Score the detector and the reviewers on the eval scenarios.

Each scenario's journal.export becomes a real journal file (systemd-journal-remote), which goes through the same
path as `macha-check --local --journal-file` (check -> context -> review, read by journalctl) into a fresh SQLite
store. Then the stored events and the review are compared with expected.toml:

- recall: an incident is found when an event of its subsystem (any, for novelty) shows a line holding its key;
- false alarms: high or critical events on a line holding a must-not key;
- severity agreement: a found incident's event has the expected severity (exact); within one step is shown too;
- review score: the share of the root-cause words the review names, and whether its proposed actions stay inside
  the allowed ones and avoid the forbidden ones (the mean of the two; a scenario without root-cause words is
  scored on its actions alone).

Incidents marked `needs` (correlation, novelty) are counted apart as well as in the overall figures."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import tomllib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
JOURNAL_REMOTE_PATHS = ("/lib/systemd/systemd-journal-remote", "/usr/lib/systemd/systemd-journal-remote")
ALARM = ("critical", "high")
RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
#: The groups the figures are given for: incidents a pattern can name, and those waiting for another detector.
CORE = "core"


class EvalError(Exception):
    """A scenario or the tools it needs are missing or broken: one line for the user."""


def journal_remote() -> str:
    for p in JOURNAL_REMOTE_PATHS:
        if Path(p).exists():
            return p
    raise EvalError("systemd-journal-remote is not installed (Debian: apt-get install systemd-journal-remote)")


@dataclass
class IncidentResult:
    subsystem: str | list[str]
    severity: str
    key: str
    group: str
    found: bool = False
    got_severity: str | None = None
    pattern: str | None = None


@dataclass
class ScenarioResult:
    name: str
    family: str
    distro: str
    systemd: int
    needs: str | None
    entries_read: int = 0
    events: int = 0
    incidents: list[IncidentResult] = field(default_factory=list)
    false_alarms: list[dict[str, str]] = field(default_factory=list)
    #: high or critical events on background noise (lines the scenario did not place)
    other_alarms: list[dict[str, str]] = field(default_factory=list)
    reviews: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None


def load_expected(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise EvalError(f"{path}: {exc}") from None


def scenario_dirs(root: Path = SCENARIOS, only: list[str] | None = None) -> list[Path]:
    dirs = sorted(d for d in root.iterdir() if (d / "expected.toml").exists()) if root.is_dir() else []
    if only:
        dirs = [d for d in dirs if any(o in d.name for o in only)]
    if not dirs:
        raise EvalError(f"no scenarios in {root}" + (f" matching {only}" if only else ""))
    return dirs


def build_journal(export: Path, out: Path) -> Path:
    proc = subprocess.run([journal_remote(), "-o", str(out), str(export)], capture_output=True, text=True)
    if proc.returncode != 0 or not out.exists():
        raise EvalError(f"systemd-journal-remote failed on {export}: {proc.stderr.strip()[-300:]}")
    return out


def _subsystems(s: str | list[str]) -> list[str]:
    return [s] if isinstance(s, str) else list(s)


def _events(store: Any, hostname: str) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from macha.store.models import LogEvent, TriggerEvent

    with store.session() as s:
        rows = s.execute(select(TriggerEvent, LogEvent.message).outerjoin(
            LogEvent, LogEvent.id == TriggerEvent.log_event_id).where(TriggerEvent.hostname == hostname)).all()
    events = {t.id: {"severity": t.severity, "subsystem": str((t.meta or {}).get("subsystem", "other")),
                     "pattern": t.pattern_id or t.trigger_type, "line": msg or t.trigger_reason,
                     "reason": t.trigger_reason, "count": t.count or 1} for t, msg in rows}
    # A line a correlation folded under its root event is also judged as part of that root: one issue, at the
    # root's severity (its subsystem stays the line's own).
    folded = [{**events[t.id], "severity": events[root]["severity"], "pattern": events[root]["pattern"]}
              for t, _ in rows if (root := (t.meta or {}).get("root_event_id")) in events]
    return list(events.values()) + folded


def _entries_read(store: Any, hostname: str) -> int:
    from sqlalchemy import func, select

    from macha.store.models import JournalCursor

    with store.session() as s:
        return int(s.execute(select(func.sum(JournalCursor.entries_read)).where(
            JournalCursor.hostname == hostname)).scalar() or 0)


def _review(store: Any, hostname: str) -> dict[str, Any] | None:
    from sqlalchemy import select

    from macha.store.models import Review

    with store.session() as s:
        r = s.execute(select(Review).where(Review.hostname == hostname).order_by(Review.id.desc())).scalars().first()
        if r is None:
            return None
        return {"status": r.status, "summary": r.summary, "reviewer": r.reviewer, "outcome": r.outcome,
                "payload": r.payload or {}}


def score_review(review: dict[str, Any] | None, expected: dict[str, Any]) -> dict[str, Any]:
    want = expected.get("review", {})
    words = [w.lower() for w in want.get("root_cause", [])]
    allowed, forbidden = set(want.get("allowed_actions", [])), set(want.get("forbidden_actions", []))
    if review is None:
        # No review: nothing was proposed, and nothing was named.
        text, proposed = "", []
    else:
        p = review["payload"]
        text = " ".join([review.get("summary") or "", *(i.get("title", "") for i in p.get("issues", [])),
                         *p.get("patterns", [])]).lower()
        proposed = [a.get("action", "") for a in p.get("proposed_actions", [])]
    named = [w for w in words if w in text]
    bad = [a for a in proposed if a in forbidden or (allowed and a not in allowed) or (not allowed and a in forbidden)]
    actions_ok = 0.0 if bad else 1.0
    parts = [actions_ok] + ([len(named) / len(words)] if words else [])
    return {"score": sum(parts) / len(parts), "root_cause_named": named, "root_cause_missing":
            [w for w in words if w not in named], "proposed": proposed, "bad_actions": bad,
            "status": review["status"] if review else None, "reviewer": review["reviewer"] if review else None,
            "outcome": review["outcome"] if review else None}


#: A scenario is a few hours of one host's journal: novelty learns its first two hours (a host's default is a day).
NOVELTY_LEARNING = "2h"


def _settings(state: Path, model_url: str | None = None) -> Any:
    from macha.config import load_settings

    kw: dict[str, Any] = {"hostname": "eval-runner", "state_dir": state, "memory": {"enable": False},
                          "detection": {"novelty_learning": NOVELTY_LEARNING}}
    if model_url:
        kw.update(review_model="gemma3-270m", context_size=4096,
                  llm={"backend": "openai", "openai_url": model_url, "answer_tokens": 1024, "timeout": 300})
    else:
        kw["llm"] = {"backend": "none"}
    return load_settings(**kw)


def make_template(directory: Path) -> Path:
    """A store at the newest schema, which each scenario's store copies (migrating every scenario's store would be
    a third of the suite's time)."""
    from macha.store.db import Store

    template = directory / "macha.db"
    Store(f"sqlite:///{template}").dispose()
    return template


def _fresh_store(state: Path, template: Path | None) -> Any:
    """A new SQLite store at the newest schema: a copy of the template, or migrated here without one."""
    from macha.store.db import Store

    state.mkdir(parents=True, exist_ok=True)
    if template is None:
        return Store(f"sqlite:///{state / 'macha.db'}")
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{template}{suffix}").exists():
            shutil.copyfile(f"{template}{suffix}", state / f"macha.db{suffix}")
    return Store(f"sqlite:///{state / 'macha.db'}", auto_migrate=False)


def _through_cli(journal: Path, state: Path) -> str:
    """The scenario through the `macha-check --local --journal-file` command itself (a process of its own); returns
    the host the journal was filed under."""
    import json
    import sys

    env = {**os.environ, "MACHA_STATE_DIR": str(state), "MACHA_LLM__BACKEND": "none", "MACHA_MEMORY__ENABLE": "false",
           "MACHA_DETECTION__NOVELTY_LEARNING": NOVELTY_LEARNING}
    env.pop("MACHA_CONFIG", None)
    env.pop("MACHA_DATABASE_URL", None)
    proc = subprocess.run([sys.executable, "-m", "macha.cli.check", "--local", "--journal-file", str(journal),
                           "--json"], capture_output=True, text=True, env=env, timeout=300)
    if proc.returncode not in (0, 1):  # 1: it found problems, which is the point
        raise EvalError(f"macha-check exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    return json.loads(proc.stdout)["hostname"]


def run_scenario(directory: str, model_url: str | None = None, cli: bool = False,
                 template: Path | None = None) -> ScenarioResult:
    """One scenario through the real journal path; never raises (an error is part of the result). ``cli``: through
    the macha-check command in a process of its own (slower: it starts Python and migrates a store per scenario)."""
    from macha import pipeline
    from macha.store.db import Store

    d = Path(directory)
    try:
        expected = load_expected(d / "expected.toml")
    except EvalError as exc:
        return ScenarioResult(d.name, "?", "?", 0, None, error=str(exc))
    res = ScenarioResult(d.name, expected.get("family", "other"), expected.get("distro", "?"), int(expected.get("systemd", 0)), expected.get("needs"))
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f"macha-eval-{d.name[:20]}-"))
    try:
        journal = build_journal(d / "journal.export", tmp / "scenario.journal")
        if cli:
            host = _through_cli(journal, tmp / "cli")
            store = Store(f"sqlite:///{tmp / 'cli' / 'macha.db'}", auto_migrate=False)
            try:
                events = _events(store, host)
                res.reviews["rules"] = score_review(_review(store, host), expected)
                res.entries_read = _entries_read(store, host)
            finally:
                store.dispose()
            res.events = len(events)
            _score_detection(res, expected, events)
            return res
        settings = _settings(tmp / "rules")
        store = _fresh_store(tmp / "rules", template)
        try:
            source = pipeline.journal_source(str(journal), None, settings)
            state = pipeline.check_step(store, settings, settings.hostname, "manual", source, host_from_journal=True)
            state = pipeline.context_step(store, state, settings)
            host = state.hostname
            res.entries_read = (state.check or {}).get("entries_read", 0)
            if model_url:
                # The model reviews the same pending events: a copy of the store before the rules review marks them.
                store.dispose()
                (tmp / "model").mkdir()
                shutil.copyfile(tmp / "rules" / "macha.db", tmp / "model" / "macha.db")
            pipeline.review_step(store, state, settings)
            events = _events(store, host)
            res.reviews["rules"] = score_review(_review(store, host), expected)
        finally:
            store.dispose()
        if model_url:
            msettings = _settings(tmp / "model", model_url)
            mstore = Store(msettings.effective_database_url, auto_migrate=False)
            try:
                pipeline.review_step(mstore, state, msettings)
                res.reviews["model"] = score_review(_review(mstore, host), expected)
            finally:
                mstore.dispose()
        res.events = len(events)
        _score_detection(res, expected, events)
    except Exception as exc:  # noqa: BLE001 - one broken scenario must not stop the suite; it is reported
        res.error = f"{type(exc).__name__}: {exc}"[:500]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        res.seconds = time.perf_counter() - t0
    return res


def _score_detection(res: ScenarioResult, expected: dict[str, Any], events: list[dict[str, Any]]) -> None:
    named: set[int] = set()
    for inc in expected.get("incident", []):
        group = inc.get("needs") or CORE
        r = IncidentResult(inc["subsystem"], inc["severity"], inc["key"], group)
        subs = _subsystems(inc["subsystem"])
        hits = [(i, e) for i, e in enumerate(events)
                if (inc["key"] in e["line"] or inc["key"] in e["reason"]) and ("any" in subs or e["subsystem"] in subs)]
        if hits:
            r.found = True
            # The event closest in severity stands for the incident (several patterns may name one line).
            i, best = min(hits, key=lambda h: abs(RANK.get(h[1]["severity"], 4) - RANK[inc["severity"]]))
            r.got_severity, r.pattern = best["severity"], best["pattern"]
        named.update(i for i, e in enumerate(events) if inc["key"] in e["line"])
        res.incidents.append(r)
    keys = [m["key"] for m in expected.get("must_not", [])]
    placed = set(expected.get("context", {}).get("lines", []))
    for i, e in enumerate(events):
        if e["severity"] not in ALARM:
            continue
        shown = {"severity": e["severity"], "pattern": e["pattern"], "line": e["line"][:200]}
        if any(k in e["line"] for k in keys):
            res.false_alarms.append(shown)
        elif i not in named and e["line"] not in placed:
            res.other_alarms.append(shown)


# --- figures -------------------------------------------------------------------------------------------------------
def figures(results: list[ScenarioResult], group: str | None = None) -> dict[str, Any]:
    """Recall, severity agreement and false alarms over the incidents of one group (None: all)."""
    incs = [i for r in results for i in r.incidents if group is None or i.group == group]
    found = [i for i in incs if i.found]
    exact = [i for i in found if i.got_severity == i.severity]
    near = [i for i in found if abs(RANK.get(i.got_severity or "info", 4) - RANK[i.severity]) <= 1]
    out: dict[str, Any] = {
        "incidents": len(incs), "found": len(found),
        "recall": round(len(found) / len(incs), 3) if incs else None,
        "severity_agreement": round(len(exact) / len(found), 3) if found else None,
        "severity_within_one": round(len(near) / len(found), 3) if found else None,
    }
    if group in (None, CORE):
        scoped = results if group is None else [r for r in results if not r.needs]
        out["false_alarms"] = sum(len(r.false_alarms) for r in scoped)
        out["other_alarms"] = sum(len(r.other_alarms) for r in scoped)
        for lane in ("rules", "model"):
            scores = [r.reviews[lane]["score"] for r in scoped if lane in r.reviews]
            if scores:
                out[f"review_{lane}"] = round(sum(scores) / len(scores), 3)
    return out


def summary(results: list[ScenarioResult]) -> dict[str, Any]:
    groups = sorted({i.group for r in results for i in r.incidents})
    return {"scenarios": len(results), "errors": [f"{r.name}: {r.error}" for r in results if r.error],
            "overall": figures(results), **{g: figures(results, g) for g in groups},
            "families": by_family(results)}


def by_family(results: list[ScenarioResult]) -> dict[str, dict[str, Any]]:
    """The overall figures of each family's scenarios (the issue's list)."""
    fams = sorted({r.family for r in results})
    return {f: {"scenarios": sum(r.family == f for r in results),
                **figures([r for r in results if r.family == f])} for f in fams}


def run_all(dirs: list[Path], jobs: int = 2, model_url: str | None = None, cli: bool = False,
            ) -> list[ScenarioResult]:
    journal_remote()
    if shutil.which("journalctl") is None:
        raise EvalError("journalctl is not installed")
    with tempfile.TemporaryDirectory(prefix="macha-eval-schema-") as tmp:
        template = make_template(Path(tmp))
        if jobs <= 1 or model_url or len(dirs) == 1:
            return [run_scenario(str(d), model_url, cli, template) for d in dirs]
        n = len(dirs)
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            return list(pool.map(run_scenario, [str(d) for d in dirs], [None] * n, [cli] * n, [template] * n))


def as_json(results: list[ScenarioResult]) -> dict[str, Any]:
    return {"summary": summary(results), "scenarios": [asdict(r) for r in results]}


def default_jobs() -> int:
    return max(1, min(4, os.cpu_count() or 1))
