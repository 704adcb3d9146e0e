"""Relationships between hosts (``web1 depends-on db1``), as an operator states them with macha-systems."""

from __future__ import annotations

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from macha.core.states import RelationshipKind
from macha.store.models import HostRelationship, utcnow
from macha.store.ops import insert_ignore


def link(session: Session, source: str, target: str, kind: RelationshipKind, actor: str) -> bool:
    """Record ``source kind target``; False when it was recorded already."""
    inserted = insert_ignore(session, HostRelationship.__table__,
                             [{"source": source, "target": target, "kind": str(kind), "created_by": actor,
                               "created_at": utcnow()}], returning=("id",))
    return bool(inserted)


def unlink(session: Session, source: str, target: str, kind: RelationshipKind | None = None) -> int:
    """Forget ``source kind target`` (every kind when None); how many were removed."""
    q = delete(HostRelationship).where(HostRelationship.source == source, HostRelationship.target == target)
    if kind is not None:
        q = q.where(HostRelationship.kind == str(kind))
    return session.execute(q).rowcount or 0


def of_host(session: Session, hostname: str) -> list[HostRelationship]:
    """Every relationship naming the host, on either side, oldest first."""
    return list(session.execute(
        select(HostRelationship)
        .where(or_(HostRelationship.source == hostname, HostRelationship.target == hostname))
        .order_by(HostRelationship.id)).scalars())


def every(session: Session) -> list[HostRelationship]:
    return list(session.execute(select(HostRelationship).order_by(HostRelationship.id)).scalars())
