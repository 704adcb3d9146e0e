"""Metrics of one host: the newest sample of each series, trends, and one series in buckets over a range
(the store's bucketed queries: date_bin / time_bucket on PostgreSQL, epoch arithmetic on SQLite)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Self

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from sqlalchemy.orm import Session

from macha.read.common import require_host, when
from macha.read.errors import NotFound
from macha.store import timeseries
from macha.store.db import Store
from macha.store.models import utcnow

#: A chart wants a few hundred points at most: the bucket width grows with the range.
MAX_BUCKETS = 500
MIN_STEP_S = 10
MAX_RANGE = timedelta(days=400)


class MetricValue(BaseModel):
    name: str
    time: datetime
    value: float


class WindowTrend(BaseModel):
    window_s: int
    avg: float
    max: float
    min: float
    count: int
    direction: str | None


class MetricTrend(BaseModel):
    name: str
    latest: MetricValue
    windows: list[WindowTrend] = Field(default_factory=list)


def current(session: Session, hostname: str, names: list[str] | None = None) -> list[MetricValue]:
    """The newest sample of each of the host's series (of ``names`` when given), by name."""
    return [MetricValue(name=n, time=t, value=v)
            for n, (t, v) in sorted(timeseries.latest(session, hostname, names).items())]


def current_metrics(store: Store, hostname: str, names: list[str] | None = None) -> list[MetricValue]:
    with store.session() as s:
        require_host(s, hostname)
        return current(s, hostname, names)


def trends(store: Store, hostname: str, now: datetime | None = None) -> list[MetricTrend]:
    """Each series' newest sample and its last hour and day (avg/max/min, rising/falling/steady)."""
    with store.session() as s:
        require_host(s, hostname)
        found = timeseries.summary(s, hostname, now or utcnow())
    return [MetricTrend(name=name, latest=MetricValue(name=name, time=t.latest[0], value=t.latest[1]),
                        windows=[WindowTrend(window_s=int(w.total_seconds()), avg=st.avg, max=st.max, min=st.min,
                                             count=st.count, direction=st.direction)
                                 for w, st in sorted(t.windows.items())])
            for name, t in sorted(found.items())]


class _RangeQuery(BaseModel):
    """A host's series over [since, until) in buckets: what a chart asks."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(max_length=255)
    since: Annotated[AwareDatetime, BeforeValidator(when)]
    until: Annotated[AwareDatetime | None, BeforeValidator(when)] = None
    #: bucket width in seconds; by default the range over a few hundred buckets
    step_s: int | None = Field(None, ge=MIN_STEP_S, le=86400 * 31)

    @model_validator(mode="after")
    def _range(self) -> Self:
        until = self.until or utcnow()
        if until <= self.since:
            raise ValueError("until must be after since")
        if until - self.since > MAX_RANGE:
            raise ValueError(f"the range is at most {MAX_RANGE.days} days")
        return self

    def width(self) -> int:
        span = ((self.until or utcnow()) - self.since).total_seconds()
        if self.step_s is not None:
            # A step too fine for the range is widened: the answer stays a few hundred points.
            return max(self.step_s, int(-(-span // MAX_BUCKETS)))
        return max(MIN_STEP_S, int(-(-span // MAX_BUCKETS)))


#: A series name as stored: no control characters (a name is echoed in pages and error lines).
SeriesName = Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[^\x00-\x1f\x7f]+$")]
#: The series of one request: a page's charts together stay well below this.
MAX_CHART_SERIES = 32


class SeriesQuery(_RangeQuery):
    name: SeriesName


class ChartQuery(_RangeQuery):
    """Several series of one host over one range, for a chart (or a page of charts) in one request."""

    # As the API spells it (?name=a&name=b), so that a bad one is named as sent.
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    names: list[SeriesName] = Field(min_length=1, max_length=MAX_CHART_SERIES, alias="name")

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        self.names = list(dict.fromkeys(self.names))
        return self


class Point(BaseModel):
    start: datetime
    avg: float
    max: float
    min: float
    count: int


class Series(BaseModel):
    host: str
    name: str
    since: datetime
    until: datetime
    step_s: int
    points: list[Point]


class ChartSeries(BaseModel):
    """One series' buckets as columns (what a plotting library takes; a tenth of the objects and half the JSON
    of a list of points): start[i], avg[i], max[i], min[i] and count[i] are bucket i."""

    name: str
    start: list[datetime]
    avg: list[float]
    max: list[float]
    min: list[float]
    count: list[int]


class Chart(BaseModel):
    host: str
    since: datetime
    until: datetime
    step_s: int
    #: in the order asked
    series: list[ChartSeries]


def series(store: Store, q: SeriesQuery) -> Series:
    c = chart(store, ChartQuery(host=q.host, names=[q.name], since=q.since, until=q.until, step_s=q.step_s))
    one = c.series[0]
    return Series(host=c.host, name=q.name, since=c.since, until=c.until, step_s=c.step_s,
                  points=[Point(start=t, avg=a, max=hi, min=lo, count=n)
                          for t, a, hi, lo, n in zip(one.start, one.avg, one.max, one.min, one.count)])


def chart(store: Store, q: ChartQuery) -> Chart:
    """The buckets of each named series, in one query. NotFound names a series the host never had (a series
    merely quiet over the range has no points)."""
    until = q.until or utcnow()
    width = q.width()
    with store.session() as s:
        require_host(s, q.host)
        found = timeseries.bucketed_many(s, q.host, q.names, q.since, until, width)
        empty = [n for n, buckets in found.items() if not buckets]
        if empty:
            known = timeseries.metric_names(s, q.host)
            for name in empty:
                if name not in known:
                    near = [n for n in known if n.startswith(name.split("{")[0])][:10]
                    raise NotFound(f"host {q.host} has no metric series {name!r}"
                                   + (f" (series starting so: {', '.join(near)})" if near else ""))
    return Chart(host=q.host, since=q.since, until=until, step_s=width,
                 series=[ChartSeries(name=name, start=[b.start for b in found[name]],
                                     avg=[b.avg for b in found[name]], max=[b.max for b in found[name]],
                                     min=[b.min for b in found[name]], count=[b.count for b in found[name]])
                         for name in q.names])


def names(store: Store, hostname: str) -> list[str]:
    with store.session() as s:
        require_host(s, hostname)
        return timeseries.metric_names(s, hostname)
