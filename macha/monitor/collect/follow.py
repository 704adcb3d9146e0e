"""The live journal follower: `journalctl -f -o json` matched line by line, so a critical line does not wait for the
next scheduled check.

On a critical or high match the follower stores the event at once (the check later skips it: same entry key) and
asks for `check_host(reason=live)`, which reads everything since the check's cursor and reviews at once. The
follower never moves the check's cursor: what it does not store, the check still reads. `macha-ai` runs it in a
thread of its own process (one Python process less) and restarts it if it fails;
`python -m macha.cli.follow` runs it alone. Asking for the check is a callback the interface passes in.
"""

from __future__ import annotations

import json
import logging
import select
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from macha.broker.live import Feed
from macha.core.states import LiveKind
from macha.config import GroupingSettings, Settings
from macha.core.errors import JournalError, MachaError
from macha.core.severity import SEVERITY_RANK, Severity
from macha.monitor.checks.journal import ensure_host, insert_detections
from macha.monitor.collect.journal import JournalSource, parse_entry
from macha.monitor.detect.correlate import Correlator, correlator_for
from macha.monitor.detect.matcher import Matcher, default_matcher, matcher_for
from macha.monitor.detect.triggers import detect
from macha.store.db import Store

log = logging.getLogger("macha.follow")
#: Severities that cannot wait for the schedule.
URGENT = Severity.HIGH.rank
#: A burst of critical lines asks for one check now and one when the burst is over, not one per line.
DEBOUNCE_S = 1.0
#: How often an idle follower wakes to see whether it should stop.
IDLE_WAKE_S = 1.0


def follow_argv(source: JournalSource) -> list[str]:
    if source.kind == "file":
        # `journalctl -f --file X` prints nothing and exits 0: it cannot follow a single file.
        raise JournalError(f"cannot follow the single journal file {source.path}; follow its directory instead")
    return ["journalctl", "--follow", "--output=json", "--all", "--lines=0", "--no-pager", *source.argv()]


@dataclass
class FollowStats:
    lines: int = 0
    stored: int = 0
    checks_requested: int = 0


class Follower:
    def __init__(self, store: Store, hostname: str, source: JournalSource, request_check: Callable[[], None],
                 matcher: Matcher | None = None, max_message: int = 16384,
                 grouping: GroupingSettings | None = None, feed: Feed | None = None,
                 correlator: Correlator | None = None):
        self.store, self.hostname, self.source = store, hostname, source
        # Urgent lines stored here go through the correlation rules as the check's do (a crash loop, a full disk
        # and the writes it breaks); the rest reach them through the check.
        self.correlator = correlator
        self.feed = feed
        self.grouping = grouping
        self.request_check = request_check
        self.matcher = matcher or default_matcher()
        self.max_message = max_message
        self.stats = FollowStats()
        self._last_request = 0.0
        self._owed = False
        self.proc: subprocess.Popen | None = None

    def handle_line(self, line: bytes) -> bool:
        """Store an urgent line's events; True when it was urgent."""
        self.stats.lines += 1
        try:
            entry = parse_entry(json.loads(line), self.max_message)
        except ValueError:
            log.warning("journalctl printed a line that is not JSON; skipped (the check reads it again)")
            return False
        if entry is None:
            return False
        detection = detect(entry, self.matcher, self.hostname, self.source.key)
        if detection is None or not any(SEVERITY_RANK[t["severity"]] <= URGENT for t in detection.triggers):
            return False
        with self.store.session() as s:
            inserted, _, _ = insert_detections(s, [detection], self.grouping, correlator=self.correlator)
        self.stats.stored += len(inserted)
        if inserted and self.feed is not None:
            # Committed: open pages and followers show it now, before the live check reviews it.
            self.feed.publish(LiveKind.EVENTS, self.hostname)
        self._owe_check()
        return True

    def _owe_check(self) -> None:
        self._owed = True
        self._maybe_request()

    def _maybe_request(self) -> None:
        if self._owed and time.monotonic() - self._last_request >= DEBOUNCE_S:
            self._owed = False
            self._last_request = time.monotonic()
            self.stats.checks_requested += 1
            try:
                self.request_check()
            except MachaError as exc:
                # The events are stored; the scheduled check and the reconciler pick them up.
                log.warning("could not request a live check: %s", exc)

    def run(self, should_stop: Callable[[], bool] = lambda: False) -> int:
        self.source.check_readable()
        ensure_host(self.store, self.hostname)
        self.proc = subprocess.Popen(follow_argv(self.source), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        log.info("following the journal (%s)", self.source.key)
        buffer = b""
        try:
            while not should_stop():
                # Idle, wake only to look at should_stop; with a check owed, when its debounce ends.
                wait = max(0.05, DEBOUNCE_S - (time.monotonic() - self._last_request)) if self._owed else IDLE_WAKE_S
                ready, _, _ = select.select([self.proc.stdout], [], [], wait)
                if ready:
                    chunk = self.proc.stdout.read1(65536)
                    if not chunk:
                        break  # journalctl ended
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if line.strip():
                            self.handle_line(line)
                self._maybe_request()
        finally:
            if self.proc.poll() is None:
                self.proc.terminate()
                self.proc.wait(timeout=10)
        err = (self.proc.stderr.read() if self.proc.stderr else b"").decode(errors="replace").strip()
        if self.proc.returncode not in (0, -15) and err:
            hint = " (is this user in the systemd-journal group?)" if "ermission" in err else ""
            raise JournalError(f"journalctl --follow failed: {err.splitlines()[-1]}{hint}")
        return self.proc.returncode or 0


def source_from(settings: Settings) -> JournalSource:
    return JournalSource.directory(settings.journal_directory) if settings.journal_directory else JournalSource()


def follow(settings: Settings, should_stop: Callable[[], bool],
           request_check: Callable[[str | None], None]) -> int:
    """Follow this host's journal until ``should_stop`` (what `macha-ai` runs in a thread of its own).

    ``request_check(journal_dir)`` asks for a live check of this host, reading ``journal_dir`` (None: the system
    journal). The interface passes it (macha.cli.follow sends the Celery chain): Layer 1 knows no queue.
    """
    store = Store(settings.effective_database_url)
    try:
        source = source_from(settings)
        journal_dir = str(source.path) if source.kind == "dir" else None

        def request_live_check() -> None:
            request_check(journal_dir)

        matcher, _ = matcher_for(settings.patterns_file)
        correlator, _ = correlator_for(settings.correlations_file)
        return Follower(store, settings.hostname, source, request_live_check, matcher,
                        settings.journal_max_message, settings.grouping,
                        feed=Feed(settings.effective_broker_url), correlator=correlator).run(should_stop=should_stop)
    finally:
        store.dispose()
