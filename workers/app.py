"""The Celery app. Configured from Settings at import, so `celery -A workers.app` and `macha-ai` agree.

Queues: ``host.<hostname>`` (work that must run on that machine), ``review`` (CPU work), ``gpu`` (the meta model,
one worker with -c 1). On Redis, message priority 0 is the highest.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from celery import Celery, chain
from kombu import Queue
from kombu.transport import redis as kombu_redis

from macha.config import Settings, load_settings
from macha.context.tokens import use_cache_dir
from macha.core.errors import MachaError
from macha.core.states import EscalationKind
from macha.monitor.checks.registry import HOST_CHECKS

#: Message priorities (Redis: 0 runs first).
PRIORITY_HIGHEST = 0
PRIORITY_DEFAULT = 5
PRIORITY_BACKGROUND = 9

#: Tasks that run on the queue of the host they concern: the journal check, actions, the config index, the
#: collector's beat and the registered host checks that read the machine.
HOST_TASKS = {"macha.check_host", "macha.execute_action", "macha.index_config", "macha.heartbeat",
              *(c.task for c in HOST_CHECKS if c.on_host)}
#: Actions jump ahead of collection on their host's queue.
PRIORITY_ACTION = 1
#: The gpu queue's order: critical escalations, then chat, then other escalations, then background analyses.
PRIORITY_GPU = {EscalationKind.CRITICAL: 0, "chat": 2, EscalationKind.ESCALATION: 4, EscalationKind.BACKGROUND: 9}


def host_queue(hostname: str) -> str:
    return f"host.{hostname}"


def transport_options(settings: Settings) -> dict[str, Any]:
    return {
        "priority_steps": list(range(10)),
        "sep": ":",
        "queue_order_strategy": "priority",
        "visibility_timeout": settings.broker_visibility_timeout,
        "unacked_restore_interval": settings.broker_restore_interval,
        "unacked_restore_throttle": 1,
    }


def route(name: str, args: tuple, kwargs: dict, options: dict, task: Any = None, **_: Any) -> dict | None:
    """check_host (and later actions) run on the queue of the host they concern."""
    if name in HOST_TASKS:
        hostname = kwargs.get("hostname") or (args[0] if args else None)
        if hostname:
            return {"queue": host_queue(hostname)}
    return None


def celery_config(settings: Settings) -> dict[str, Any]:
    url = settings.effective_broker_url
    return {
        "broker_url": url,
        "result_backend": url,
        "broker_transport_options": transport_options(settings),
        "result_backend_transport_options": {"visibility_timeout": settings.broker_visibility_timeout},
        "broker_connection_retry_on_startup": True,
        "task_default_queue": "review",
        "task_queues": [
            Queue(host_queue(settings.hostname)),
            Queue("review"),
            Queue("gpu"),
        ],
        "task_create_missing_queues": True,
        "task_routes": (route,),
        "task_default_priority": PRIORITY_DEFAULT,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        # A task is acknowledged after it ran, and put back if its worker died under it.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # Hard limit below the visibility timeout: a running task is never handed to a second worker.
        "task_time_limit": settings.task_time_limit,
        # The soft limit leaves the task time to roll back and say why before the hard one kills it.
        "task_soft_time_limit": settings.task_time_limit - min(30, settings.task_time_limit // 5),
        "result_expires": 86400,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "worker_hijack_root_logger": False,
        "timezone": "UTC",
        "enable_utc": True,
        "beat_schedule": _beat_schedule(settings),
        "beat_schedule_filename": str(settings.state_dir / "celerybeat-schedule"),
    }


def _beat_schedule(settings: Settings) -> dict[str, Any]:
    from beat_schedule import build_beat_schedule

    return build_beat_schedule(settings)


def check_pipeline(
    celery: Celery,
    hostname: str,
    reason: str = "schedule",
    *,
    journal_file: str | None = None,
    journal_dir: str | None = None,
    host_from_journal: bool = False,
) -> chain:
    """The Layer 1 -> 2 -> 3 chain for one host, by task name, so senders need not import the tasks."""
    return chain(
        celery.signature(
            "macha.check_host",
            kwargs={"hostname": hostname, "reason": reason, "journal_file": journal_file, "journal_dir": journal_dir,
                    "host_from_journal": host_from_journal},
            immutable=True,
        ),
        celery.signature("macha.summarize_pending"),
        celery.signature("macha.review"),
    )


def send_execute(celery: Celery, action_id: int, hostname: str) -> None:
    """Ask the target host's worker to run an action (ready in the database; the task only carries its id)."""
    celery.send_task(
        "macha.execute_action",
        kwargs={"action_id": action_id, "hostname": hostname},
        queue=host_queue(hostname),
        priority=PRIORITY_ACTION,
    )


def send_escalate(celery: Celery, escalation_id: int, kind: str = EscalationKind.CRITICAL, *,
                  fallback: bool = False) -> None:
    """Analyses run on the gpu queue, ordered by kind (stored first: the gpu worker may be offline). The review
    model's fallback runs on the review queue instead, at the top of it."""
    if fallback:
        celery.send_task("macha.escalate", args=(escalation_id,), kwargs={"fallback": True}, queue="review",
                         priority=PRIORITY_HIGHEST)
        return
    celery.send_task("macha.escalate", args=(escalation_id,), queue="gpu",
                     priority=PRIORITY_GPU.get(kind, PRIORITY_GPU[EscalationKind.ESCALATION]))


def send_chat(celery: Celery, message_id: int) -> None:
    """A chat question: on the gpu queue after critical escalations, before everything else there."""
    celery.send_task("macha.chat_turn", args=(message_id,), queue="gpu", priority=PRIORITY_GPU["chat"])


#: Seconds a consumer's blocking pop waits before it is sent again (kombu's default is 1). A message still arrives
#: at once; an idle worker just wakes less often.
BRPOP_TIMEOUT_S = 5


def create_app(settings: Settings) -> Celery:
    # kombu reads this from the transport class when a channel opens; there is no transport option for it.
    kombu_redis.Transport.brpop_timeout = BRPOP_TIMEOUT_S
    celery = Celery("macha", include=["workers.tasks"])
    celery.conf.update(celery_config(settings))
    celery.macha_settings = settings  # type: ignore[attr-defined]
    return celery


def _settings_or_exit() -> Settings:
    try:
        return load_settings()
    except MachaError as exc:
        # Celery imports this module; a bad config must read as one line, not a traceback.
        print(f"macha: {exc}", file=sys.stderr)
        sys.exit(2)


#: What a fleet's collector never loads: the model clients, Chroma, the ONNX runtime, tiktoken and Jinja (its
#: footprint is the checks, the follower and the actions; the brain and the gpu worker hold the rest).
COLLECTOR_NEVER = ("macha.llm.ollama_backend", "macha.llm.openai_backend", "ollama", "openai", "chromadb",
                   "onnxruntime", "tiktoken", "jinja2")
#: Through Celery's logger: the worker configures it (not the root logger), so the line reaches the worker's log.
_guard_log = logging.getLogger("celery.macha.collector")


def heavy_modules_loaded() -> list[str]:
    return [name for name in COLLECTOR_NEVER if name in sys.modules]


def check_collector_imports(when: str, quiet: bool = False) -> list[str]:
    """Say which of COLLECTOR_NEVER this collector process has loaded (none, when its import paths are lazy);
    ``quiet``: only when it has."""
    loaded = heavy_modules_loaded()
    if loaded:
        _guard_log.warning("collector process %d loaded %s (%s)", os.getpid(), ", ".join(loaded), when)
    elif not quiet:
        _guard_log.info("collector process %d: no model client, Chroma, ONNX runtime, tiktoken or Jinja loaded (%s)",
                        os.getpid(), when)
    return loaded


settings = _settings_or_exit()
app = create_app(settings)
if settings.role == "collector":
    from celery import signals

    signals.worker_process_init.connect(lambda **_: check_collector_imports("pool process ready"), weak=False)
# tiktoken keeps its parsed encoding here rather than in a /tmp folder shared with other users.
use_cache_dir(settings.state_dir / "cache" / "tiktoken")
