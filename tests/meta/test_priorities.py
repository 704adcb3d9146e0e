"""Message priorities as Macha configures them on Redis: priority 0 is delivered first."""

from __future__ import annotations

from kombu import Connection

from macha.config import load_settings
from workers.app import PRIORITY_BACKGROUND, PRIORITY_HIGHEST, create_app, transport_options


def test_priority_zero_overtakes_background_work(redis_url: str, tmp_path) -> None:
    settings = load_settings(state_dir=tmp_path, broker_url=redis_url, hostname="prio")
    celery = create_app(settings)
    for i in range(30):
        celery.send_task("macha.review_tick", queue="review", priority=PRIORITY_BACKGROUND, kwargs={"n": i})
    urgent = celery.send_task("macha.review_tick", queue="review", priority=PRIORITY_HIGHEST, kwargs={"n": "urgent"})

    order = []
    with Connection(redis_url, transport_options=transport_options(settings)) as conn:
        queue = conn.SimpleQueue("review")
        for _ in range(31):
            msg = queue.get(timeout=5)
            order.append(msg.headers["id"])
            msg.ack()
    assert order[0] == urgent.id  # sent last, delivered first
    assert len(set(order)) == 31
