"""Routing across hosts, against the real Redis server: an action goes to its host's queue and nowhere else; while
that host's collector is down it waits there, and once it has waited past the approval timeout it expires (the
brain's sweep or the executor, whichever sees it first) and never runs."""

from __future__ import annotations

from datetime import timedelta

import redis
from sqlalchemy import select, update

from macha.actions import executor
from macha.actions.approvals import expire_due, stale_ready
from macha.config import load_settings
from macha.core.states import ActionStatus
from macha.store.db import Store
from macha.store.models import Action, ActionAudit, Host, utcnow
from workers.app import HOST_TASKS, create_app, host_queue, route, send_execute

DOWN = "down-collector"


def queued(client: redis.Redis, queue: str) -> int:
    # One list per priority step (host.x, host.x:1, ...).
    return sum(client.llen(k) for k in client.scan_iter(match=f"{queue}*") if client.type(k) == b"list")


def _ready_action(store: Store, decided_ago: timedelta) -> int:
    with store.session() as s:
        action = Action(hostname=DOWN, action="restart_service", arguments={"unit": "nginx.service"},
                        dedup_key="k" * 64, risk="medium", status=ActionStatus.READY, proposer="review:rules",
                        autonomy_level="suggest", decided_by="ops", decided_at=utcnow() - decided_ago)
        s.add(action)
        s.flush()
        return action.id


def test_every_host_task_routes_to_its_host_queue_only() -> None:
    for task in HOST_TASKS:
        assert route(task, (), {"hostname": "b"}, {}) == {"queue": "host.b"}, task
    assert route("macha.review", (), {"hostname": "b"}, {}) is None  # the review queue's, wherever it runs


def test_an_action_for_a_down_collector_waits_in_its_queue_then_expires(db_url, redis_url, tmp_path) -> None:
    store_url = db_url
    store = Store(store_url)
    settings = load_settings(hostname="brain", state_dir=tmp_path, broker_url=redis_url, database_url=store_url)
    client = redis.Redis.from_url(redis_url)
    fresh = _ready_action(store, timedelta(minutes=5))
    send_execute(create_app(settings), fresh, DOWN)
    # On the down host's queue, and on no queue another worker takes.
    assert queued(client, host_queue(DOWN)) == 1
    assert queued(client, "review") == queued(client, "gpu") == queued(client, host_queue("brain")) == 0

    # Another host's worker that got it anyway would not run it.
    elsewhere = executor.execute(store, settings, fresh, probe=None)
    assert not elsewhere.ran and "belongs to host down-collector" in elsewhere.reason

    # The reconciler sends a ready action again when its message may be lost, but not while its host is silent:
    # the message waits in that queue, and copies would pile up behind it.
    with store.session() as s:
        s.add(Host(hostname=DOWN, silent_since=utcnow()))
        s.execute(update(Action).where(Action.id == fresh).values(updated_at=utcnow() - timedelta(hours=1)))
    assert stale_ready(store, 120) == []
    with store.session() as s:
        s.execute(update(Host).where(Host.hostname == DOWN).values(silent_since=None))
    assert stale_ready(store, 120) == [(fresh, DOWN)]

    # Within the approval timeout it stays ready; past it, the sweep expires it and says why.
    stale = _ready_action(store, timedelta(hours=25))
    assert expire_due(store, timedelta(hours=24)) == [stale]
    with store.session() as s:
        assert s.get(Action, fresh).status == ActionStatus.READY
        assert s.get(Action, stale).status == ActionStatus.EXPIRED
        trail = s.execute(select(ActionAudit.reason).where(ActionAudit.action_id == stale)).scalars().all()
    assert any("not run on down-collector within the approval timeout" in r for r in trail)

    # The collector comes back after the timeout (the sweep did not run): its executor expires it, runs nothing.
    late = _ready_action(store, timedelta(hours=25))
    on_host = load_settings(hostname=DOWN, state_dir=tmp_path, broker_url=redis_url, database_url=store_url)
    outcome = executor.execute(store, on_host, late, probe=None)
    assert not outcome.ran and outcome.status == ActionStatus.EXPIRED
    with store.session() as s:
        assert s.get(Action, late).started_at is None
    store.dispose()
