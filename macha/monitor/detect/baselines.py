"""Learned metric baselines: is this sample unusual for this series, at this hour, given its recent past?

Several models, each trained on a different window, must agree before a sample counts as anomalous (as Netdata
does, to cut false alarms), and only `sustain` anomalous samples in a row raise; as many normal ones clear.

- seasonal: the series' usual level, spread and short-term dispersion in this 10-minute slot of the day or, once
  that slot of the week has been seen, of the week (weekends, and a weekly job, are then normal at their time).
- recent: the series' offset from its seasonal level over the last few hours, and its spread (adapts to a day
  busier than usual, to slow trends and, within hours, to a new normal; its spread learns slower than its centre,
  so a slow leak falls behind it instead of widening it).
- change: the short-term level (about 2.5 minutes) against the medium one (about 10 minutes), the rate of change,
  against how fast this series usually moves.
- dispersion: the short-term scatter of the samples against its usual value this hour and recently; a variance
  burst is too high, a stuck collector (flat line) of a series that is usually noisy too low.

A level anomaly needs the seasonal model and the recent or the change model, on the same side; a dispersion
anomaly needs the seasonal and the recent dispersion. Every estimate is robust: an exponentially weighted centre and
mean absolute deviation whose updates are clipped at three spreads (a Huber-style M-estimate standing in for
median and MAD, in O(1) state), so one outlier moves nothing much. Pure functions: the state lives in the store
(baseline_states, baseline_buckets), so a restart forgets nothing."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

#: Weights of the newest sample: short-term level (~2.5 min at 30 s), medium level (~10 min), short-term
#: dispersion (~5 min), the recent model (~3 h), the change spread (~1 day), a seasonal bucket (~7 days of its
#: slot: 20 samples a day).
FAST, MID, VOL = 0.2, 0.05, 0.1
RECENT, CHANGE, BUCKET = 1 / 360, 1 / 2880, 1 / 140
#: The recent model's spread learns four times slower than its centre: a slow leak moves the centre behind it but
#: does not widen the band until it is out of it.
RECENT_SPREAD = RECENT / 4
#: Seasonal slots are this many minutes: jobs start and end on the clock (a backup from 02:00 to 02:40), and a
#: slot that mixes a job's level with the quiet one after it would make the quiet one look anomalous.
SLOT = 10
SLOTS_A_DAY = 24 * 60 // SLOT
#: Below this many samples an estimate is a plain mean and mean deviation (nothing to be robust against yet).
WARMUP = 30
#: Updates are clipped at this many spreads.
CLIP = 3.0
#: A seasonal bucket is used once it has seen this many samples (one pass of its slot).
BUCKET_READY = 20
#: Mean absolute deviation to standard deviation, for a normal distribution.
SIGMA = 1.2533
#: Robust sigmas outside the band, by sensitivity.
Z = {"low": 6.0, "medium": 5.0, "high": 4.0}
#: A sample's change from the last one counts at most this many times the recent dispersion.
STEP_CLIP = 6.0
#: Dispersion this many times above its usual value is a burst; this fraction of it, a flat line.
VOL_HIGH, VOL_LOW = 3.0, 0.15
#: The least spread a series is given, by unit (a disk at 45.30% for days is not anomalous at 45.31%), and as a
#: fraction of its level.
UNIT_FLOOR = {"%": 0.25, "load": 0.02}
DEFAULT_FLOOR, RELATIVE_FLOOR = 0.01, 0.02
#: A flat line is only anomalous for a series whose usual dispersion is at least this fraction of its floor.
NOISY = 0.25


@dataclass(frozen=True)
class Bucket:
    samples: int = 0
    center: float = 0.0
    spread: float = 0.0
    vol: float = 0.0


@dataclass(frozen=True)
class State:
    samples: int = 0
    first_at: datetime | None = None
    fast: float = 0.0
    mid: float = 0.0
    center: float = 0.0
    spread: float = 0.0
    change_spread: float = 0.0
    vol: float = 0.0
    vol_recent: float = 0.0
    last: float = 0.0
    streak: int = 0
    calm: int = 0
    raised: bool = False


@dataclass(frozen=True)
class Verdict:
    """What one sample was judged: which models flagged it, the band it was expected in, how far outside."""

    models: tuple[str, ...] = ()
    low: float = 0.0
    high: float = 0.0
    excess: float = 0.0
    kind: Literal["level", "dispersion", ""] = ""
    scatter: float = 0.0
    usual_scatter: float = 0.0

    @property
    def anomalous(self) -> bool:
        return bool(self.models)


def floor(unit: str, level: float) -> float:
    return max(UNIT_FLOOR.get(unit, DEFAULT_FLOOR), RELATIVE_FLOOR * abs(level))


def robust(center: float, spread: float, n: int, x: float, alpha: float, least: float,
           warmup: int = WARMUP, spread_alpha: float | None = None) -> tuple[float, float]:
    """One update of a robust centre and mean absolute deviation."""
    if n == 0:
        return x, 0.0
    weight = max(alpha, 1.0 / (n + 1))
    spread_weight = weight if spread_alpha is None else max(spread_alpha, 1.0 / (n + 1))
    r = x - center
    if n >= warmup:
        limit = CLIP * max(spread, least)
        r = min(max(r, -limit), limit)
    return center + weight * r, spread + spread_weight * (abs(r) - spread)


def ew(value: float, n: int, x: float, alpha: float) -> float:
    return x if n == 0 else value + max(alpha, 1.0 / (n + 1)) * (x - value)


def buckets_of(when: datetime) -> tuple[int, int]:
    """The slot-of-day and slot-of-week buckets of a time (UTC: a daylight-saving change only blurs an hour)."""
    day = (when.hour * 60 + when.minute) // SLOT
    return day, SLOTS_A_DAY * (1 + when.weekday()) + day


def short_term(state: State, x: float) -> tuple[float, float, float]:
    """The short-term level, the medium level and the short-term dispersion, with ``x`` folded in. Dispersion is
    the change from the last sample, clipped at STEP_CLIP times its recent value: one spike or one step moves it
    little, a burst of scatter (every sample) much."""
    n = state.samples
    jump = abs(x - state.last) if n else 0.0
    if n >= WARMUP:
        jump = min(jump, STEP_CLIP * max(state.vol_recent, 1e-9))
    return ew(state.fast, n, x, FAST), ew(state.mid, n, x, MID), ew(state.vol, n, jump, VOL)


def judge(state: State, day: Bucket, week: Bucket, x: float, unit: str, z: float) -> Verdict:
    """Which models find ``x`` out of their band. Abstains (not anomalous) until the seasonal bucket is learned."""
    if day.samples < BUCKET_READY or state.samples < WARMUP:
        return Verdict()
    fast, mid, vol = short_term(state, x)
    # Once its slot of the week has been seen, that bucket is the seasonal model (weekends, weekly jobs); before,
    # the slot of the day.
    season = week if week.samples >= BUCKET_READY else day
    width = z * SIGMA * max(season.spread, floor(unit, season.center))
    side = 1 if x > season.center else -1
    # Every series Macha samples is zero or more (and a percentage at most 100): the band says so.
    low = max(season.center - width, 0.0)
    high = min(season.center + width, 100.0) if unit == "%" else season.center + width
    if abs(x - season.center) > width:
        models = ["seasonal"]
        least = floor(unit, day.center)
        if (x - day.center - state.center) * side > z * SIGMA * max(state.spread, least):
            models.append("recent")
        if (fast - mid) * side > z * SIGMA * max(state.change_spread, least / 4):
            models.append("change")
        if len(models) >= 2:
            edge = high if side > 0 else low
            return Verdict(tuple(models), low, high, abs(x - edge) / width, "level")
    # Dispersion: a burst, or a usually noisy series gone flat.
    least = floor(unit, x)
    usual = max(season.vol, least / 4)
    recent = max(state.vol_recent, least / 4)
    if vol > VOL_HIGH * usual and vol > VOL_HIGH * recent:
        return Verdict(("seasonal dispersion", "recent dispersion"), low, high,
                       vol / (VOL_HIGH * max(usual, recent)) - 1, "dispersion", vol, max(usual, recent))
    if season.vol > NOISY * least and vol < VOL_LOW * season.vol and vol < VOL_LOW * state.vol_recent:
        return Verdict(("seasonal dispersion", "recent dispersion"), low, high, 1 - vol / (VOL_LOW * season.vol),
                       "dispersion", vol, season.vol)
    return Verdict()


def learn(state: State, day: Bucket, week: Bucket, x: float, unit: str, when: datetime,
          anomalous: bool) -> tuple[State, Bucket, Bucket]:
    """Fold ``x`` into every model. While a sample is anomalous the seasonal buckets learn it at a quarter of the
    weight: a new normal is learned, an incident is not made usual."""
    n = state.samples
    least = floor(unit, x)
    fast, mid, vol = short_term(state, x)
    # The recent model follows the series' offset from this slot's usual level: the daily cycle is left out,
    # a day that runs busier than usual (or a slow trend) is learned within hours.
    center, spread = robust(state.center, state.spread, n, x - day.center if day.samples else 0.0, RECENT, least,
                            spread_alpha=RECENT_SPREAD)
    change = fast - mid
    _, change_spread = robust(0.0, state.change_spread, n, change, CHANGE, least / 4)
    vol_recent = ew(state.vol_recent, n, vol, RECENT)
    new_state = replace(state, samples=n + 1, first_at=state.first_at or when, last=x, fast=fast, mid=mid, center=center,
                        spread=spread, change_spread=change_spread, vol=vol, vol_recent=vol_recent)
    scale = 0.25 if anomalous else 1.0
    return new_state, _learn_bucket(day, x, vol, least, scale), _learn_bucket(week, x, vol, least, scale)


def _learn_bucket(b: Bucket, x: float, vol: float, least: float, scale: float) -> Bucket:
    center, spread = robust(b.center, b.spread, b.samples, x, BUCKET, least, BUCKET_READY)
    v = ew(b.vol, b.samples, vol, BUCKET)
    if scale < 1 and b.samples >= BUCKET_READY:
        # Not counted as a sample either: the bucket's warm-up weights stay for normal ones.
        return Bucket(b.samples, b.center + (center - b.center) * scale, b.spread + (spread - b.spread) * scale,
                      b.vol + (v - b.vol) * scale)
    return Bucket(b.samples + 1, center, spread, v)


def step(state: State, verdict: Verdict, sustain: int, learned: bool) -> tuple[State, Literal["raise", "clear"] | None]:
    """Advance the streaks: raise after ``sustain`` anomalous samples in a row (once learned), clear after as many
    normal ones."""
    if verdict.anomalous and learned:
        state = replace(state, streak=state.streak + 1, calm=0)
        if not state.raised and state.streak >= sustain:
            return replace(state, raised=True), "raise"
        return state, None
    state = replace(state, streak=0, calm=state.calm + 1 if state.raised else 0)
    if state.raised and state.calm >= sustain:
        return replace(state, raised=False, calm=0), "clear"
    return state, None
