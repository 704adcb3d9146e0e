"""Template mining for compaction: every stored log event gets its message's template as it is stored, so
the context window can show a burst of 2,000 lines as one "N x <template>" line with a GROUP BY.

The miner's state is the host's rows in ``log_templates`` (id and template text per cluster); the parser
(``template_parser``) is rebuilt from them in each process. No pickled object is read back from the database.
When the parser merges templates (a word position that turned out to hold names), the events stored under the
merged-away ids move to the surviving id in the same transaction, and the merged-away rows stay, empty, with
``merged_into`` set, so that their ids are never reused and an id handed out earlier can still be followed.
``template_state.version`` tells a process that another one changed the templates, and bumping it first in the
storing transaction serialises miners of one host (it takes the row's lock on PostgreSQL, the write lock on SQLite).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from macha.core.text import storable
from macha.monitor.template_masks import mask
from macha.monitor.template_parser import Parser
from macha.store.models import LogEvent, LogTemplate, TemplateState, utcnow
from macha.store.ops import insert_ignore, upsert_many

#: Longest message mined; the rest of a huge line adds nothing to its template.
MAX_MINED_CHARS = 2000


@dataclass
class HostMiner:
    hostname: str
    version: int
    parser: Parser
    #: clusters created or changed since the last flush: written to log_templates with the batch
    dirty: set[int] = field(default_factory=set)
    #: ids merged into another since the last flush: their stored events move to the surviving id
    merged: set[int] = field(default_factory=set)

    def add(self, message: str) -> int:
        cluster_id, merged_away = self.parser.add(mask(message[:MAX_MINED_CHARS]))
        self.dirty.add(cluster_id)
        self.merged.update(merged_away)
        return cluster_id

    def template(self, cluster_id: int) -> str:
        return self.parser.clusters[self.parser.resolve(cluster_id)].template()


_miners: dict[str, HostMiner] = {}


def _load(session: Session, hostname: str, version: int) -> HostMiner:
    parser = Parser()
    rows = session.execute(
        select(LogTemplate.cluster_id, LogTemplate.template, LogTemplate.size, LogTemplate.merged_into)
        .where(LogTemplate.hostname == hostname).order_by(LogTemplate.cluster_id)
    ).all()
    for cluster_id, template, size, merged_into in rows:
        parser.load(cluster_id, template, size, merged_into)
    return HostMiner(hostname, version, parser)


def _locked_miner(session: Session, hostname: str) -> HostMiner:
    """The host's miner, current and locked for this transaction (its version bumped first)."""
    insert_ignore(session, TemplateState.__table__, [{"hostname": hostname, "version": 0}], returning=("hostname",))
    miner = _miners.get(hostname)
    while True:
        if miner is None:
            version = session.execute(
                select(TemplateState.version).where(TemplateState.hostname == hostname)
            ).scalar_one()
            miner = _load(session, hostname, version)
        bumped = session.execute(
            update(TemplateState)
            .where(TemplateState.hostname == hostname, TemplateState.version == miner.version)
            .values(version=miner.version + 1)
        ).rowcount
        if bumped == 1:
            miner.version += 1
            return miner
        miner = None  # another process mined since: reload its templates


def assign_templates(session: Session, hostname: str, messages: Sequence[str],
                     now: datetime | None = None) -> list[int]:
    """Mine ``messages`` and return their template ids; the changed templates are written in this transaction.

    If the transaction rolls back, the process's miner is dropped so that the next call reloads from the store.
    """
    if not messages:
        return []
    now = now or utcnow()
    miner = _locked_miner(session, hostname)
    # Until commit the in-memory miner is ahead of the store: forget it if anything below fails.
    _miners.pop(hostname, None)
    parser = miner.parser
    # Resolved after the whole batch: a merge late in the batch also moves the ids handed out earlier in it.
    # A template is stored: mined from the storable text (PostgreSQL refuses a NUL, any backend a lone surrogate).
    ids = [miner.add(storable(m)) for m in messages]
    ids = [parser.resolve(i) for i in ids]
    rows = []
    for cid in sorted(miner.dirty | miner.merged):
        cluster = parser.clusters.get(cid)
        if cluster is None:  # merged away: the row stays, empty, so that the id is never handed out again
            rows.append({"hostname": hostname, "cluster_id": cid, "template": "", "size": 0,
                         "merged_into": parser.resolve(cid), "first_seen": now, "last_seen": now})
        else:
            rows.append({"hostname": hostname, "cluster_id": cid, "template": cluster.template(),
                         "size": cluster.size, "merged_into": None, "first_seen": now, "last_seen": now})
    for old in sorted(miner.merged):
        session.execute(update(LogEvent).where(LogEvent.hostname == hostname, LogEvent.template_id == old)
                        .values(template_id=parser.resolve(old)))
    miner.dirty.clear()
    miner.merged.clear()
    upsert_many(session, LogTemplate.__table__, rows, keys=["hostname", "cluster_id"],
                update=["template", "size", "merged_into", "last_seen"])
    _remember_after_commit(session, miner)
    return ids


def _remember_after_commit(session: Session, miner: HostMiner) -> None:
    from sqlalchemy import event

    def keep(_session: Session) -> None:
        _miners[miner.hostname] = miner

    event.listen(session, "after_commit", keep, once=True)


def forget_miners() -> None:
    """Drop every cached miner (tests; a process that switched databases)."""
    _miners.clear()


def mine_offline(messages: Sequence[str]) -> tuple[list[int], dict[int, str]]:
    """Mine messages without a store (benchmarks, agreement with labelled data): ids and final templates."""
    miner = HostMiner("-", 0, Parser())
    # A template is stored: mined from the storable text (PostgreSQL refuses a NUL, any backend a lone surrogate).
    ids = [miner.add(storable(m)) for m in messages]
    return [miner.parser.resolve(i) for i in ids], {cid: c.template() for cid, c in miner.parser.clusters.items()}


_SPACES = re.compile(r"\s+")


def short_template(template: str, limit: int) -> str:
    text = _SPACES.sub(" ", template).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
