"""Metric thresholds with hysteresis and sustain: raise when a series stays at or above `raise_at` for `sustain`
samples in a row; clear only when it falls below `clear_at`. A single spike does not raise, and a value hovering
between the two does not flap. Pure functions: the state lives in the store (threshold_states), so a restart
neither forgets a raised condition nor raises it again."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, replace
from typing import Literal

from macha.core.severity import Severity
from macha.monitor.collect.metrics import MetricSample


@dataclass(frozen=True)
class Threshold:
    raise_at: float
    clear_at: float
    sustain: int = 3
    severity: str = Severity.HIGH


@dataclass(frozen=True)
class SeriesState:
    streak: int = 0
    raised: bool = False


@dataclass(frozen=True)
class Transition:
    series: str
    name: str
    value: float
    unit: str
    kind: Literal["raise", "clear"]
    threshold: Threshold


def threshold_for(name: str, thresholds: dict[str, Threshold]) -> Threshold | None:
    if name in thresholds:
        return thresholds[name]
    for pattern, t in thresholds.items():
        if fnmatch.fnmatchcase(name, pattern):
            return t
    return None


def step(state: SeriesState, value: float, t: Threshold) -> tuple[SeriesState, Literal["raise", "clear"] | None]:
    if value >= t.raise_at:
        state = replace(state, streak=state.streak + 1)
        if not state.raised and state.streak >= t.sustain:
            return replace(state, raised=True), "raise"
        return state, None
    if value < t.clear_at:
        return SeriesState(0, False), "clear" if state.raised else None
    # Between clear_at and raise_at: a raised condition stays raised; an unraised one starts counting again.
    return (state if state.raised else SeriesState(0, False)), None


def evaluate(samples: list[MetricSample], states: dict[str, SeriesState],
             thresholds: dict[str, Threshold]) -> tuple[dict[str, SeriesState], list[Transition]]:
    new_states = dict(states)
    transitions = []
    for s in samples:
        t = threshold_for(s.name, thresholds)
        if t is None:
            continue
        new_states[s.key], kind = step(states.get(s.key, SeriesState()), s.value, t)
        if kind:
            transitions.append(Transition(s.key, s.name, s.value, s.unit, kind, t))
    return new_states, transitions
