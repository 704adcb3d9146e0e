"""Benchmark: the footprint of `macha-ai` on the embedded default at the 30 s interval, idle and after work.

Starts a real `macha-ai` with the defaults: embedded Redis, worker with beat, gpu worker, live follower, metrics
and services, semantic memory (the offline ONNX embedding), the dashboard and the MCP server.
It follows a journal directory of its own, so the host's own journal does not feed it.

Without `--work` (the idle footprint) it measures after a warm-up, over a window:
- the CPU time of the whole process tree (supervisor, workers and their children, beat, follower, journalctl,
  Redis, the interface servers), as a percent of one core;
- the sum of the tree's resident memory (RSS), and its proportional set size (PSS: pages shared between
  processes, such as a forked pool child's, counted once);
- both per process.

With `--work ROUNDS` it first does a stretch of simulated work, then lets the tree go idle and measures the same:
each round appends an incident to the journal (a segfault, an OOM kill, a kernel oops...), which the follower
and the checks pick up; the review model (the fake model server of the tests) reviews it, every third review
escalates to the meta model on the gpu queue, and each review is written to semantic memory; the dashboard and
the MCP server answer a few reads. It waits for the round's review and memory write before the next.

With `--base DIR` it measures a second code tree in the same run (a checkout of another commit, put first on
PYTHONPATH), first, and gives the ratios.

The baseline, measured in the same run, is a bare `python -c "import time; time.sleep(...)"` process: what one
Python process costs when idle. The floor, also measured, is a process that has only imported Macha's Celery app
and tasks: what any one worker costs before it runs anything.

    .venv/bin/python bench/footprint.py [--warmup 60] [--window 180] [--work 24] [--base DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import psutil

from macha.core.errors import MachaError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
BIN = Path(sys.executable).parent


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def rss_mb(procs: list[psutil.Process]) -> float:
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def pss_mb(procs: list[psutil.Process]) -> float:
    """Proportional set size: shared pages (a forked child's, a library's) counted once over the processes."""
    total = 0
    for p in procs:
        try:
            total += p.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied, AttributeError):
            pass
    return total / 2**20


LABELS = (("redis-server", "redis-server (embedded)"), ("journalctl", "journalctl -f"),
          ("macha.cli.interfaces", "dashboard + MCP server"), ("macha.cli.web", "dashboard"),
          ("macha.mcp", "MCP server"), ("--queues gpu", "gpu worker"), ("celery", "worker"),
          ("macha-ai", "macha-ai (supervisor)"))


def label(p: psutil.Process) -> str:
    try:
        text = " ".join(p.cmdline())
        parent = " ".join(p.parent().cmdline()) if p.parent() else ""
    except psutil.NoSuchProcess:
        return "?"
    for key, name in LABELS:
        if key in text:
            # A pool child (or the embedded beat) has its worker's command line.
            return f"  {name}'s child" if "celery" in text and "celery" in parent else name
    return text[:40]


#: Native libraries worth naming: which process holds them says where the heavy work ran.
MAPPED = {"onnxruntime": "onnxruntime_pybind11_state", "chroma": "chromadb_rust_bindings", "tiktoken": "_tiktoken",
          "tokenizers": "tokenizers.abi3", "uvicorn": "uvloop", "numpy": "_multiarray_umath"}


def mapped(p: psutil.Process) -> str:
    try:
        maps = Path(f"/proc/{p.pid}/maps").read_text()
    except OSError:
        return "?"
    return ",".join(name for name, lib in MAPPED.items() if lib in maps)


def processes(pid: int, extra: list[int]) -> list[psutil.Process]:
    procs = {p.pid: p for p in tree(pid)}
    for other in extra:
        if other not in procs and psutil.pid_exists(other):
            procs[other] = psutil.Process(other)
    return list(procs.values())


def measure(pid: int, extra: list[int], warmup: float, window: float, detail: bool = False):
    time.sleep(warmup)
    procs = processes(pid, extra)
    start = {p.pid: cpu_seconds([p]) for p in procs}
    c0, t0 = cpu_seconds(procs), time.monotonic()
    time.sleep(window)
    elapsed = time.monotonic() - t0
    procs = processes(pid, extra)
    rows = []
    for p in procs:
        cpu = 100 * (cpu_seconds([p]) - start.get(p.pid, 0.0)) / elapsed
        rows.append((label(p), p.pid, cpu, rss_mb([p]), pss_mb([p]), mapped(p)))
    if detail:
        print(f"{'process':34} {'pid':>7} {'CPU %':>6} {'RSS MB':>7} {'PSS MB':>7}  libraries loaded")
        for row in sorted(rows, key=lambda r: r[0].strip()):
            print(f"{row[0]:34} {row[1]:7} {row[2]:6.2f} {row[3]:7.1f} {row[4]:7.1f}  {row[5]}")
    return 100 * (cpu_seconds(procs) - c0) / elapsed, rss_mb(procs), pss_mb(procs), len(procs)


def _fake_model():
    """The tests' fake model server, answering each model with what it is asked for: the review model a review
    (every third one asking for an escalation), the meta model an analysis."""
    from fakes.ollama import FakeOllama, valid_analysis, valid_review

    class Fake(FakeOllama):
        reviews = 0

        def _scripted(self, h, body):
            if self._missing(h, body.get("model", "")):
                return None
            if body.get("model") == "qwen3:14b":
                return {"content": valid_analysis()}
            with self.lock:
                Fake.reviews += 1
                n = Fake.reviews
            return {"content": valid_review(should_escalate=n % 3 == 0,
                                            escalation_reason="look deeper" if n % 3 == 0 else None)}

    return Fake()


#: One incident a round, in turn: kernel lines each of a critical pattern of its own (examples of
#: macha/monitor/detect/patterns.toml), so that each is a new group the review looks at.
INCIDENTS = (
    "Out of memory: Killed process {n}00 (postgres) total-vm:8123456kB, anon-rss:7000000kB, file-rss:0kB",
    "Kernel panic - not syncing: Fatal exception in interrupt",
    "Oops: 0002 [#1] PREEMPT SMP NOPTI",
    "kernel BUG at mm/slub.c:3917!",
    "watchdog: BUG: soft lockup - CPU#{n} stuck for 23s! [kworker/3:1:1234]",
    "NMI watchdog: Watchdog detected hard LOCKUP on cpu {n}",
    "EXT4-fs (sda1): Remounting filesystem read-only",
    "mce: [Hardware Error]: Machine check events logged",
    "md/raid1:md0: Disk failure on sdb1, disabling device.",
    "general protection fault: 0000 [#1] SMP PTI",
    "thermal thermal_zone0: critical temperature reached (105 C), shutting down",
    "EDAC MC1: 1 UE memory read error on CPU_SrcID#1_Ha#0_Chan#2_DIMM#0 (channel:2 slot:0 page:0x5a1b offset:0x0)",
)


def _count(db: Path, sql: str) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute(sql).fetchone()[0])
    except sqlite3.Error:
        return -1


def _wait(what: str, cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(1)
    print(f"  (gave up waiting for {what} after {timeout:.0f} s)", flush=True)
    return False


#: What the interface reads that failed said (the first few are printed).
FAILURES: list[str] = []


def _interfaces(state: Path, web_port: int, mcp_port: int) -> tuple[int, int]:
    """A few reads from the dashboard and the MCP server, as an operator and a client would: (ok, failed)."""
    ok = failed = 0
    try:
        token = (state / "secrets" / "web-token").read_text().strip()
        base = f"http://127.0.0.1:{web_port}"
        with httpx.Client(base_url=base, timeout=30, headers={"Origin": base}) as web:
            web.post("/login", data={"token": token})
            for path in ("/", "/reviews", "/api/v1/hosts", "/api/v1/reviews", "/api/v1/events"):
                r = web.get(path)
                ok, failed = (ok + 1, failed) if r.status_code < 400 else (ok, failed + 1)
                if r.status_code >= 400:
                    FAILURES.append(f"GET {path}: {r.status_code} {r.text[:100]!r}")
    except (OSError, httpx.HTTPError) as exc:
        failed += 1
        FAILURES.append(f"dashboard: {exc!r}")
    try:
        from macha.mcp.auth import read_token

        token = read_token(state / "secrets" / "mcp-token")
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream",
                   "Host": f"127.0.0.1:{mcp_port}"}
        url = f"http://127.0.0.1:{mcp_port}/mcp"
        with httpx.Client(timeout=30, headers=headers) as mcp:
            r = mcp.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
            sid = r.headers.get("mcp-session-id")
            h = {"mcp-session-id": sid} if sid else {}
            mcp.post(url, headers=h, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
            r2 = mcp.post(url, headers=h, json={"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
                "name": "list_events", "arguments": {}}})
            for r in (r, r2):
                ok, failed = (ok + 1, failed) if r.status_code < 400 else (ok, failed + 1)
                if r.status_code >= 400:
                    FAILURES.append(f"MCP: {r.status_code} {r.text[:100]!r}")
    except (OSError, httpx.HTTPError, MachaError) as exc:
        failed += 1
        FAILURES.append(f"MCP: {exc!r}")
    return ok, failed


def _remembered(ai_log: Path) -> int:
    return len(re.findall(r"macha\.remember_review\[\S+\] succeeded", ai_log.read_text(errors="replace")))


def work(ai_log: Path, state: Path, jdir: Path, rounds: int, web_port: int, mcp_port: int) -> dict:
    """Simulated work: one incident a round, stored by the follower, checked, reviewed (every third review asks
    for an escalation), remembered; then a few reads from the dashboard and the MCP server."""
    from helpers.journal import Entry, append_journal

    db = state / "macha.db"
    t0 = time.monotonic()
    web = [0, 0]
    for n in range(rounds):
        stored = _count(db, "select count(*) from log_events")
        append_journal(jdir, [Entry(INCIDENTS[n % len(INCIDENTS)].format(n=n + 1), priority=2)])
        _wait(f"incident {n + 1} to be stored", lambda: _count(db, "select count(*) from log_events") > stored, 60)
        _wait(f"incident {n + 1} to be reviewed",
              lambda: _count(db, "select count(*) from trigger_events where review_id is null") == 0, 150)
        _wait(f"review {n + 1} to be remembered",
              lambda: _remembered(ai_log) >= _count(db, "select count(*) from reviews"), 120)
        ok, failed = _interfaces(state, web_port, mcp_port)
        web[0] += ok
        web[1] += failed
    escalations = _count(db, "select count(*) from escalations")
    _wait("the escalations", lambda: len(re.findall(r"macha\.escalate\[\S+\] succeeded",
                                                    ai_log.read_text(errors="replace"))) >= escalations, 300)
    text = ai_log.read_text(errors="replace")
    return {"rounds": rounds, "seconds": round(time.monotonic() - t0),
            "log events": _count(db, "select count(*) from log_events"),
            "reviews": _count(db, "select count(*) from reviews"),
            "memory writes": _remembered(ai_log),
            "escalations": len(re.findall(r"macha\.escalate\[\S+\] succeeded", text)),
            "checks": len(re.findall(r"macha\.check_host\[\S+\] succeeded", text)),
            "interface reads": f"{web[0]} ok, {web[1]} failed", "last failures": FAILURES[-3:]}


def run_tree(name: str, code: Path | None, args: argparse.Namespace) -> dict:
    """One `macha-ai` of the code tree `code` (None: this one): work (if asked), then the idle measurement."""
    from helpers.journal import Entry, build_journal
    from helpers.processes import free_port

    print(f"\n== {name}{f' ({code})' if code else ''}")
    with tempfile.TemporaryDirectory(prefix="mf-", dir="/tmp") as tmp:
        jdir = Path(tmp) / "j"
        jdir.mkdir()
        build_journal([Entry("boot", priority=6)], jdir / "system.journal")
        state = Path(tmp) / "s"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MACHA_")}
        env.update(MACHA_STATE_DIR=str(state), MACHA_JOURNAL_DIRECTORY=str(jdir), MACHA_HOSTNAME="footprint",
                   PATH=f"{BIN}:{env['PATH']}")
        if code is not None:
            env["PYTHONPATH"] = str(code)
        fake = None
        web_port, mcp_port = free_port(), free_port()
        # The interfaces are on (the default), on ports of their own.
        env.update(MACHA_WEB_INTERFACE__PORT=str(web_port), MACHA_MCP_SERVER__PORT=str(mcp_port))
        if args.work:
            fake = _fake_model()
            env.update(MACHA_OLLAMA_URL=fake.url)
        else:
            env.update(MACHA_LLM__BACKEND="none")
        ai_log = Path(tmp) / "macha-ai.log"
        ai = subprocess.Popen([str(BIN / "macha-ai")], env=env, stdout=ai_log.open("wb"),
                              stderr=subprocess.STDOUT, start_new_session=True)
        result: dict = {"name": name}
        try:
            _wait("the workers", lambda: len(re.findall(r"@footprint ready\.", ai_log.read_text(errors="replace")))
                  >= 2, 120)
            # The embedded Redis daemonises out of the tree: find it by its socket path.
            redis = [p.pid for p in psutil.process_iter(["cmdline"])
                     if "redis-server" in " ".join(p.info["cmdline"] or []) and tmp in " ".join(p.info["cmdline"])]
            if args.work:
                result["work"] = work(ai_log, state, jdir, args.work, web_port, mcp_port)
                print("  work:", json.dumps(result["work"]))
            cpu, rss, pss, n = measure(ai.pid, redis, args.warmup, args.window, detail=True)
            result.update(cpu=cpu, rss=rss, pss=pss, n=n)
        finally:
            os.killpg(ai.pid, signal.SIGTERM)
            try:
                ai.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(ai.pid, signal.SIGKILL)
            if fake is not None:
                fake.close()
            if args.keep_log:
                Path(args.keep_log).with_suffix(f".{name}.log").write_bytes(ai_log.read_bytes())
    print(f"  total ({result['n']} processes): CPU {result['cpu']:.2f}% of one core, RSS {result['rss']:.0f} MB, "
          f"PSS {result['pss']:.0f} MB")
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--warmup", type=float, default=60)
    ap.add_argument("--window", type=float, default=180)
    ap.add_argument("--work", type=int, default=0, metavar="ROUNDS",
                    help="simulated work before the idle measurement: this many incidents reviewed and remembered")
    ap.add_argument("--base", type=Path, help="also measure this code tree (a checkout of another commit), first")
    ap.add_argument("--keep-log", help="keep each macha-ai's log as PATH.<name>.log")
    args = ap.parse_args()
    # Stopped with SIGTERM: the finally clauses stop the macha-ai they started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, warm-up {args.warmup:.0f} s, "
          f"window {args.window:.0f} s, work {args.work} rounds")
    results = []
    if args.base is not None:
        results.append(run_tree("base", args.base.resolve(), args))
    results.append(run_tree("this tree", None, args))

    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(100000)"])
    # The floor of any Celery worker of Macha's: a process that has only imported the app and its tasks.
    with tempfile.TemporaryDirectory(prefix="mf-", dir="/tmp") as tmp:
        floor = subprocess.Popen([sys.executable, "-c", "import workers.tasks, time; time.sleep(100000)"],
                                 env={**os.environ, "MACHA_STATE_DIR": tmp}, cwd=ROOT)
        try:
            base_cpu, base_rss, base_pss, _ = measure(idle.pid, [], 0, min(args.window, 30))
            floor_rss = rss_mb(tree(floor.pid))
        finally:
            floor.kill()
            idle.kill()
    print()
    for r in results:
        print(f"{r['name']}: {r['n']} processes, CPU {r['cpu']:.2f}% of one core, RSS {r['rss']:.0f} MB, "
              f"PSS {r['pss']:.0f} MB")
    if len(results) == 2:
        b, t = results
        print(f"ratio this tree / base: RSS {t['rss'] / b['rss']:.2f}, PSS {t['pss'] / b['pss']:.2f}, "
              f"processes {t['n']}/{b['n']}")
    print(f"baseline (one idle Python process): CPU {base_cpu:.2f}%, RSS {base_rss:.0f} MB, PSS {base_pss:.0f} MB")
    print(f"floor (one Python process with Macha's Celery app and tasks imported, nothing run): RSS {floor_rss:.0f} MB")


if __name__ == "__main__":
    main()
