"""The fleet registry: each `macha-ai` registers its host on start (its role and facts) and a collector beats every
triggerInterval; the brain watches the beats and raises a high "host silent" event for a collector not heard from
for fleet.silentAfter, and an info event when it beats again."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import select, update

from macha.config import Settings
from macha.core.followups import FollowUps, StepRun
from macha.core.severity import Severity
from macha.core.states import LiveKind
from macha.monitor.checks.journal import ensure_host
from macha.monitor.collect.hostinfo import host_facts
from macha.monitor.detect.triggers import state_trigger
from macha.store.db import Store
from macha.store.models import Host, TriggerEvent, utcnow
from macha.store.ops import insert_ignore

#: Roles the brain watches: a collector reads its host, so its silence means that host is unwatched. An `all` host
#: beats too (its last beat is shown) but watches itself: it would only ever call itself silent after a restart.
WATCHED_ROLES = ("collector",)
SILENT = "host_silent"
BACK = "host_back"


def roles_of(value: str | None) -> set[str]:
    return {r for r in (value or "").split(",") if r}


def register(store: Store, settings: Settings, role: str) -> None:
    """This host, as the role started here sees it: its facts (OS, kernel, NixOS generation, Macha version) and
    the role added to those already recorded (a brain and a collector may share a machine). Its beats come from
    its worker, once that takes messages: a collector restarted while silent is back when it works again, not when
    its supervisor starts."""
    ensure_host(store, settings.hostname, host_facts())
    with store.session() as s:
        host = s.execute(select(Host).where(Host.hostname == settings.hostname)).scalar_one()
        host.macha_role = ",".join(sorted(roles_of(host.macha_role) | {role}))


def beat(store: Store, hostname: str) -> StepRun:
    """A collector's beat (a task on its own queue: it proves the worker takes its messages, not only that the
    machine is up)."""
    now = utcnow()
    with store.session() as s:
        found = s.execute(update(Host).where(Host.hostname == hostname).values(beat_at=now, last_seen=now)).rowcount
    if not found:  # the registry was emptied under it: register again
        ensure_host(store, hostname)
        with store.session() as s:
            s.execute(update(Host).where(Host.hostname == hostname)
                      .values(beat_at=now, macha_role="collector"))
    return StepRun(result={"hostname": hostname, "beat_at": now.isoformat()})


class WatchResult(BaseModel):
    silent: list[str] = Field(default_factory=list)
    back: list[str] = Field(default_factory=list)
    trigger_ids: list[int] = Field(default_factory=list)


def _ago(then: datetime | None, now: datetime) -> str:
    return f"{int((now - then).total_seconds())} s ago" if then is not None else "never"


def watch(store: Store, settings: Settings, now: datetime | None = None) -> StepRun:
    """The brain's look at the beats: a collector silent for silentAfter raises one high event (once, until it
    is back); a silent collector that beats again raises an info event and is no longer silent."""
    now = now or utcnow()
    limit = timedelta(seconds=settings.silent_after)
    result = WatchResult()
    with store.session() as s:
        hosts = s.execute(select(Host).where(Host.beat_at.is_not(None))).scalars().all()
        for host in hosts:
            if not roles_of(host.macha_role) & set(WATCHED_ROLES):
                continue
            quiet = now - host.beat_at
            if host.silent_since is None and quiet > limit:
                # Silent since it was last heard from: a beat after that is its return.
                host.silent_since = host.beat_at
                reason = (f"host {host.hostname} is silent: its collector was last heard from "
                          f"{_ago(host.beat_at, now)} (silentAfter {int(limit.total_seconds())} s); its checks and "
                          "actions wait in its queue")
                row = state_trigger(host.hostname, now, "fleet", SILENT, Severity.HIGH, reason, "collector",
                                    {"subsystem": "fleet", "beat_at": host.beat_at.isoformat()})
                result.silent.append(host.hostname)
            elif host.silent_since is not None and host.beat_at > host.silent_since and quiet <= limit:
                reason = (f"host {host.hostname} is back: its collector beat again after "
                          f"{int((host.beat_at - host.silent_since).total_seconds())} s without a beat")
                row = state_trigger(host.hostname, now, "fleet", BACK, Severity.INFO, reason, "collector",
                                    {"subsystem": "fleet", "silent_since": host.silent_since.isoformat()})
                host.silent_since = None
                result.back.append(host.hostname)
            else:
                continue
            result.trigger_ids += [i for (i,) in insert_ignore(s, TriggerEvent.__table__, [row], returning=("id",))]
    follow = FollowUps(review_hosts=list(result.silent), review_reason="fleet")
    for hostname in result.silent + result.back:
        follow.tell(LiveKind.EVENTS, hostname)
    return StepRun(result=result.model_dump(mode="json"), follow_ups=follow)
