"""The host-check registry is the one list the beat schedule, the queues and the host tasks come from."""

from __future__ import annotations

from beat_schedule import build_beat_schedule
from macha.config import load_settings
from macha.monitor.checks.registry import HOST_CHECKS
from workers.app import HOST_TASKS, route
from workers.tasks import HOST_CHECK_TASKS, app


def test_every_registered_check_has_its_task_its_queue_and_its_beat_entry(tmp_path) -> None:
    everything = load_settings(state_dir=tmp_path, hostname="h1", use_trigger_model=True, enable_sar=True,
                               collect_metrics=True, check_services=True)
    nothing = load_settings(state_dir=tmp_path, hostname="h1", use_trigger_model=False, enable_sar=False,
                            collect_metrics=False, check_services=False)
    on = build_beat_schedule(everything)
    off = build_beat_schedule(nothing)
    assert len(HOST_CHECKS) >= 4 and len({c.name for c in HOST_CHECKS}) == len(HOST_CHECKS)
    for check in HOST_CHECKS:
        assert check.task in app.tasks and HOST_CHECK_TASKS[check.name].name == check.task
        assert on[check.name]["task"] == check.task and on[check.name]["kwargs"] == {"hostname": "h1"}
        assert check.name not in off
        queue = route(check.task, ("h1",), {}, {})
        assert (queue == {"queue": "host.h1"}) is check.on_host and (check.task in HOST_TASKS) is check.on_host
    # The clock-driven check keeps its calendar (sarCollectFrequency) rather than an interval.
    assert "crontab" in repr(on["import-sar"]["schedule"])


def test_a_disabled_check_says_so_without_touching_the_machine(tmp_path) -> None:
    nothing = load_settings(state_dir=tmp_path, use_trigger_model=False, enable_sar=False)
    for name, why in (("classify", "useTriggerModel is false"), ("import-sar", "enableSar is false")):
        run = next(c for c in HOST_CHECKS if c.name == name).run(None, nothing, "h1")
        assert run.result == {"hostname": "h1", "skipped": why} and not run.follow_ups
