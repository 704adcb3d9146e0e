"""Settings bounds: every number and duration is refused at load, in one line naming its key, when it would crash or
invert later (an OverflowError in date arithmetic, an approval that expires at once, an infinite model timeout)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import annotated_types
import pytest
from helpers import FIXTURES
from helpers.processes import macha_env, run_cli
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from macha.config import Settings, ThresholdSettings, load_settings, parse_duration
from macha.core.errors import ConfigError

NOW = datetime.now(timezone.utc)


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "macha.toml"
    p.write_text(text)
    return p


def _numeric_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, Any, type]]:
    """(dotted key, FieldInfo, int or float) for every number of a settings model and its sections."""
    found = []
    for name, field in model.model_fields.items():
        kind = field.annotation
        if kind in (int, float):
            found.append((f"{prefix}{name}", field, kind))
        elif isinstance(kind, type) and issubclass(kind, BaseModel):
            found += _numeric_fields(kind, f"{prefix}{name}.")
    return found


NUMERIC = _numeric_fields(Settings) + _numeric_fields(ThresholdSettings, "thresholds.cpu_percent.")
DURATIONS = ["actions.approval_timeout", "classifier.lookback", "journal_initial_lookback", "issues.resolve_after"]
POSITIVE_DURATIONS = {"actions.approval_timeout", "classifier.lookback", "issues.resolve_after"}


def _nested(key: str, value: object) -> dict[str, Any]:
    head, *rest = key.split(".")
    if not rest:
        return {head: value}
    inner = _nested(".".join(rest), value)
    if head == "thresholds":
        # The other end of the hysteresis pinned where it can never be the problem.
        metric, leaf = rest
        inner = {metric: {"raise_at": 1e9, "clear_at": 0, leaf: value}}
    return {head: inner}


def _load(tmp_path: Path, key: str, value: object) -> Settings:
    return load_settings(state_dir=tmp_path / "state", **_nested(key, value))


def _get(s: object, key: str) -> Any:
    for part in key.split("."):
        s = s[part] if isinstance(s, dict) else getattr(s, part)
    return s


def test_every_number_has_both_bounds() -> None:
    assert len(NUMERIC) > 40  # the walk found the sections
    unbounded = []
    for key, field, _kind in NUMERIC:
        kinds = {type(m) for m in field.metadata}
        if not kinds & {annotated_types.Ge, annotated_types.Gt} or not kinds & {annotated_types.Le, annotated_types.Lt}:
            unbounded.append(key)
    assert unbounded == []


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    field=st.sampled_from(NUMERIC),
    value=st.one_of(
        st.integers(min_value=-(10**20), max_value=10**20),
        st.integers(min_value=-5, max_value=100_000),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([math.inf, -math.inf, math.nan, 0, 0.0, -1, 10**12, 1e308]),
    ),
)
def test_an_accepted_number_is_finite_and_fits_in_date_arithmetic(tmp_path: Path, field, value) -> None:
    key, _info, kind = field
    if kind is int and isinstance(value, float):
        value = int(value) if math.isfinite(value) and value == int(value) else value
    try:
        s = _load(tmp_path, key, value)
    except ConfigError as exc:
        message = str(exc)
        assert key in message and "\n" not in message, message
        return
    got = _get(s, key)
    assert math.isfinite(got)
    # Every option that is a span of seconds is used as now +- it; none may overflow.
    NOW + timedelta(seconds=got), NOW - timedelta(seconds=got)


_units = st.sampled_from("smhd")
_duration_text = st.one_of(
    st.builds(lambda n, u: f"{n}{u}", st.integers(min_value=0, max_value=10**16), _units),
    st.builds(lambda n, u: f"{n}{u}", st.integers(min_value=-(10**6), max_value=-1), _units),
    st.builds(lambda n, u, pad: f"{pad}{n}{u}{pad}", st.integers(0, 10**4), _units, st.sampled_from([" ", "\t", ""])),
    st.text(max_size=12),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(DURATIONS), text=_duration_text)
@example(key="actions.approval_timeout", text="3000000d")
@example(key="actions.approval_timeout", text="-1h")
@example(key="actions.approval_timeout", text="0s")
@example(key="journal_initial_lookback", text="3000000d")
@example(key="classifier.lookback", text="1_000h")
def test_an_accepted_duration_can_be_added_to_now(tmp_path: Path, key: str, text: str) -> None:
    try:
        s = _load(tmp_path, key, text)
    except ConfigError as exc:
        message = str(exc)
        assert key in message and "\n" not in message, message
        return
    span = parse_duration(_get(s, key))
    assert span >= timedelta(0)
    if key in POSITIVE_DURATIONS:
        assert span > timedelta(0)
    NOW + span, NOW - span


@pytest.mark.parametrize(
    "text, needle",
    [
        ('[actions]\napprovalTimeout = "3000000d"\n', "actions.approval_timeout: must be between 1s and 3650d"),
        ('[actions]\napprovalTimeout = "-1h"\n', "actions.approval_timeout: '-1h' is not a duration"),
        ('[actions]\napprovalTimeout = "0s"\n', "actions.approval_timeout: must be between 1s"),
        ('journalInitialLookback = "3000000d"\n', "journal_initial_lookback: must be between 0s and 3650d"),
        ("[llm]\ntimeout = inf\n", "llm.timeout: Input should be a finite number"),
        ("[llm]\ntimeout = nan\n", "llm.timeout: Input should be a finite number"),
        ("[llm]\ntimeout = 1e9\n", "llm.timeout: Input should be less than or equal to 86400"),
        ('[llm]\nkeepAlive = "forever"\n', "llm.keep_alive: 'forever' is not a duration Ollama reads"),
        ("[thresholds.cpu_percent]\nraiseAt = inf\nclearAt = 0\n", "thresholds.cpu_percent.raise_at: "),
        ("brokerVisibilityTimeout = 300\n", "broker_visibility_timeout (300) must be above task_time_limit (600)"),
        ("taskTimeLimit = 900\n", "broker_visibility_timeout (900) must be above task_time_limit (900)"),
        ("taskTimeLimit = 200\n", "meta.time_limit (300) must be below task_time_limit (200)"),
    ],
)
def test_the_settings_that_crashed_or_inverted_later_are_refused_at_load(tmp_path: Path, text: str,
                                                                          needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, text), state_dir=tmp_path / "state")
    assert needle in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("keep_alive", ["10m", "1h30m", "0", "-1m", "300ms", "24h"])
def test_keep_alive_takes_what_ollama_reads(tmp_path: Path, keep_alive: str) -> None:
    assert load_settings(state_dir=tmp_path, llm={"keep_alive": keep_alive}).llm.keep_alive == keep_alive


def test_the_defaults_and_the_readme_examples_stay_accepted(tmp_path: Path) -> None:
    s = load_settings(state_dir=tmp_path, actions={"approval_timeout": "1s"}, journal_initial_lookback="0s",
                      broker_visibility_timeout=30, task_time_limit=20, meta={"time_limit": 10})
    assert s.actions.approval_timeout == "1s" and s.broker_visibility_timeout == 30


@pytest.mark.parametrize(
    "text, needle",
    [
        ('[actions]\napprovalTimeout = "3000000d"\n', "actions.approval_timeout"),
        ("[llm]\ntimeout = inf\n", "llm.timeout"),
        ("brokerVisibilityTimeout = 300\n", "broker_visibility_timeout (300) must be above task_time_limit"),
    ],
)
def test_a_bad_bound_stops_the_command_with_one_line(tmp_path: Path, text: str, needle: str) -> None:
    cfg = write(tmp_path, text)
    proc = run_cli("macha-check", "--local", "--config", str(cfg), "--journal-file", str(FIXTURES / "oom.journal"),
                   env=macha_env(tmp_path / "state"), timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("macha-check: ") and needle in lines[0], proc.stderr
