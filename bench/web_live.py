"""Benchmark: a journal line to the open events page in a real browser, pushed over the dashboard's WebSocket.

`macha-ai` follows a journal directory (written with systemd-journal-remote) and serves the dashboard; Chromium
(Playwright) holds /events open and logged in. For each critical line we measure, in the browser's own clock
(performance.timeOrigin + now, the same wall clock as the writer's time.time()), when the line's row appears in the
table without a reload, from the moment it was appended. The baseline in the same run: the stored event (the row
in the database, polled every 20 ms), so the difference is what the feed and the page add.

    .venv/bin/python bench/web_live.py [--samples 30]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from bench.live_latency import append, pct  # noqa: E402

from macha.store.db import Store  # noqa: E402
from macha.store.models import TriggerEvent  # noqa: E402

BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=30)
    args = ap.parse_args()
    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at the start")
    with tempfile.TemporaryDirectory(prefix="mw-", dir="/tmp") as tmp:
        state, jdir = Path(tmp) / "s", Path(tmp) / "j"
        jdir.mkdir()
        append(jdir, "Started bench.")
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MACHA_")}
        env.update(MACHA_STATE_DIR=str(state), MACHA_JOURNAL_DIRECTORY=str(jdir), MACHA_LLM__BACKEND="none",
                   MACHA_HOSTNAME="bench", MACHA_WEB_INTERFACE__PORT=str(port), MACHA_COLLECT_METRICS="false",
                   MACHA_CHECK_SERVICES="false", MACHA_ENABLE_SAR="false", MACHA_MEMORY__ENABLE="false",
                   PATH=f"{BIN}:{env['PATH']}")
        log_path = Path(tmp) / "ai.log"
        ai = subprocess.Popen([str(BIN / "macha-ai")], env=env, stdout=open(log_path, "wb"),
                              stderr=subprocess.STDOUT, start_new_session=True)
        try:
            base = f"http://localhost:{port}"
            deadline = time.time() + 120
            while b"following the journal" not in log_path.read_bytes() or not _up(base):
                if time.time() > deadline or ai.poll() is not None:
                    raise SystemExit(log_path.read_text()[-2000:])
                time.sleep(0.2)
            token = (state / "secrets" / "web-token").read_text().strip()
            store = Store(f"sqlite:///{state / 'macha.db'}")
            shown, stored = [], []
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                page = browser.new_page()
                page.goto(f"{base}/login?next=/events")
                page.fill("input[name=token]", token)
                page.click("#login-token")
                page.wait_for_url(f"{base}/events")
                page.wait_for_selector("#live-state.on")
                for _ in range(args.samples):
                    word = "".join(random.choice("ghijklmnopqrstuvwxyz") for _ in range(12))
                    marker = f"Kernel panic - not syncing: bench {word}"
                    at = append(jdir, marker)
                    seen_at = page.evaluate(
                        """(marker) => new Promise((resolve) => {
                            const found = () => [...document.querySelectorAll('#events td.logtext')]
                                .some((td) => td.textContent.includes(marker));
                            const check = () => found() ? resolve(performance.timeOrigin + performance.now())
                                                        : requestAnimationFrame(check);
                            setTimeout(() => resolve(-1), 30000);
                            check();
                        })""", marker) / 1000
                    if seen_at < 0:
                        raise SystemExit(f"the line {marker!r} did not appear on the page within 30 s")
                    with store.session() as s:
                        row = s.execute(select(TriggerEvent).where(TriggerEvent.trigger_reason.contains(marker))
                                        ).scalar()
                    shown.append(seen_at - at)
                    stored.append(row.stored_at.timestamp() - at)
                    time.sleep(random.uniform(0.5, 1.5))
                browser.close()
            store.dispose()
        finally:
            os.killpg(ai.pid, signal.SIGTERM)
            ai.wait(timeout=60)
    for name, values in (("line -> stored event", stored), ("line -> row in the browser", shown)):
        print(f"{name:28} n={len(values):3}  p50 {pct(values, 50):6.3f} s  p99 {pct(values, 99):6.3f} s  "
              f"max {max(values):6.3f} s")
    print(f"what the feed and the page add, p50: {statistics.median(shown) - statistics.median(stored):.3f} s "
          f"(load average {os.getloadavg()[0]:.1f} at the end)")


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
