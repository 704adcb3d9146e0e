"""The meta model's host header names the relationships an operator recorded (macha-systems link)."""

from __future__ import annotations

from macha.context.sections import header
from macha.core.states import RelationshipKind
from macha.monitor.checks.journal import ensure_host
from macha.store import relationships
from macha.store.db import Store
from macha.store.models import utcnow


def test_header_lists_the_hosts_relationships(db_url: str) -> None:
    store = Store(db_url)
    for h in ("web1", "db1", "backup1"):
        ensure_host(store, h)
    with store.session() as s:
        assert relationships.link(s, "web1", "db1", RelationshipKind.DEPENDS_ON, "alice")
        assert not relationships.link(s, "web1", "db1", RelationshipKind.DEPENDS_ON, "alice")
        relationships.link(s, "db1", "backup1", RelationshipKind.BACKS_UP_TO, "alice")
    with store.session() as s:
        lines = header(s, "db1", utcnow(), "suggest").levels[0]()
    assert "relationship: web1 depends-on db1" in lines and "relationship: db1 backs-up-to backup1" in lines
    with store.session() as s:
        assert relationships.unlink(s, "web1", "db1") == 1
        lines = header(s, "db1", utcnow(), "suggest").levels[0]()
    assert not any("web1" in line for line in lines)
    store.dispose()
