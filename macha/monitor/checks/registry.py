"""The host checks, one entry each: the beat schedule, the queue each runs on and the host tasks are derived
from this list (as glances' plugin folder and Datadog's AgentCheck do). Adding a collector is its module and an
entry here (and a migration if it stores a new table).

The journal check is not here: it heads the check -> context -> review chain (``macha.start_check``) and reads
under a lock per journal source. Everything here runs on its own, on its host's queue unless it only reads the
store, and asks for a review of the host when it raised something.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from macha.broker.client import SingleFlight
from macha.config import Settings
from macha.core.followups import FollowUps, StepRun
from macha.core.states import LiveKind
from macha.store.db import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HostCheck:
    #: The beat entry's name.
    name: str
    #: The Celery task's name (kept stable: queued messages of a running install name it).
    task: str
    description: str
    enabled: Callable[[Settings], bool]
    #: Seconds between runs; also how long a queued run stays valid before the next one supersedes it.
    every: Callable[[Settings], float]
    run: Callable[[Store, Settings, str], StepRun]
    #: A systemd calendar expression (e.g. "*:00/10") instead of ``every``, when the check runs on the clock.
    calendar: Callable[[Settings], str] | None = None
    #: True: on the queue of the host it checks (it reads that machine). False: on the review queue (it reads the
    #: store and asks a model: CPU work, any worker).
    on_host: bool = True


def _review_if(raised: Any, hostname: str, reason: str) -> FollowUps:
    """Events it raised are reviewed (as the review policy says) and shown at once."""
    if not raised:
        return FollowUps()
    return FollowUps(review_hosts=[hostname], review_reason=reason).tell(LiveKind.EVENTS, hostname)


def _metrics(store: Store, settings: Settings, hostname: str) -> StepRun:
    from macha.monitor.checks.metrics import run_metrics

    result = run_metrics(store, settings, hostname)
    follow = _review_if(result.raised + result.anomalous, hostname, "metrics").tell(LiveKind.METRICS, hostname)
    return StepRun(result=result.model_dump(mode="json"), follow_ups=follow)


def _services(store: Store, settings: Settings, hostname: str) -> StepRun:
    from macha.monitor.checks.services import run_services

    result = run_services(store, settings, hostname)
    for note in result.notes:
        log.warning("services: %s", note)
    return StepRun(result=result.model_dump(mode="json"), follow_ups=_review_if(result.failed, hostname, "services"))


def _classify(store: Store, settings: Settings, hostname: str) -> StepRun:
    """Error lines no pattern knows, sorted by the small trigger model; what it raises is reviewed as usual."""
    if not settings.use_trigger_model:
        return StepRun(result={"hostname": hostname, "skipped": "useTriggerModel is false"})
    from macha.llm.factory import make_backend
    from macha.monitor.detect.classifier import classify_host

    # One run per host at a time: runs overlapping would ask the model twice and race its budget.
    with SingleFlight(settings.effective_broker_url, f"classify:{hostname}", settings.lock_ttl) as lock:
        if not lock.acquired:
            return StepRun(result={"hostname": hostname, "skipped": "a classifier run of this host is under way"})
        result = classify_host(store, settings, hostname, make_backend(settings)).model_dump(mode="json")
    return StepRun(result=result, follow_ups=_review_if(result.get("raised"), hostname, "classifier"))


def _sar(store: Store, settings: Settings, hostname: str) -> StepRun:
    """This host's SAR files into system_metrics (idempotent); what is missing (sysstat, files) is a note."""
    if not settings.enable_sar:
        return StepRun(result={"hostname": hostname, "skipped": "enableSar is false"})
    from macha.monitor.checks.sar import import_sar

    report = import_sar(store, hostname, settings.sar_directory)
    for note in report.notes:
        log.warning("sar: %s", note)
    return StepRun(result=report.model_dump(mode="json"))


HOST_CHECKS: tuple[HostCheck, ...] = (
    HostCheck("collect-metrics", "macha.collect_metrics", "samples, thresholds and their events",
              lambda s: s.collect_metrics, lambda s: s.trigger_interval, _metrics),
    HostCheck("check-services", "macha.check_services", "critical and failed units; transitions become events",
              lambda s: s.check_services, lambda s: s.trigger_interval, _services),
    HostCheck("classify", "macha.classify", "error lines no pattern knows, sorted by the trigger model",
              lambda s: s.use_trigger_model, lambda s: s.trigger_interval, _classify, on_host=False),
    # A run that lands while sadc is writing sees a cut-off record (a note); the next run picks it up.
    HostCheck("import-sar", "macha.import_sar", "yesterday's and today's SAR files into system_metrics",
              lambda s: s.enable_sar, lambda s: 600, _sar, calendar=lambda s: s.sar_collect_frequency),
)
CHECKS = {check.name: check for check in HOST_CHECKS}
