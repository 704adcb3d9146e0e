"""The one place that sends what a step asked for next (a FollowUps value): actions to their host's queue,
reviews to memory, escalations to the gpu queue (their review-model fallback to the review queue), hosts to
context -> review, and notices of what was stored to the live feed. Tasks call it last."""

from __future__ import annotations

from celery import Celery, chain

from macha.broker.live import Feed
from macha.core.followups import FollowUps
from workers.app import send_escalate, send_execute


def review_chain(celery: Celery, hostname: str, reason: str) -> chain:
    """context -> review for one host; the review decides from the context whether it is due."""
    return chain(celery.signature("macha.summarize_pending", args=({"hostname": hostname, "reason": reason},)),
                 celery.signature("macha.review"))


def dispatch(celery: Celery, follow: FollowUps) -> None:
    if follow.announce:
        # First: the rows are committed, and a page refreshing now finds them.
        feed = Feed(celery.conf.broker_url)
        for notice in follow.announce:
            feed.publish(notice.kind, notice.host, **notice.fields)
    for action_id, hostname in follow.execute:
        send_execute(celery, action_id, hostname)
    for review_id in follow.remember:
        celery.send_task("macha.remember_review", args=(review_id,))
    for escalation_id, kind in follow.escalate:
        send_escalate(celery, escalation_id, kind)
    for escalation_id, kind in follow.fallback:
        send_escalate(celery, escalation_id, kind, fallback=True)
    for hostname in follow.review_hosts:
        review_chain(celery, hostname, follow.review_reason).apply_async()
