"""The store: the database is the truth, the queue only a doorbell."""

from macha.store.db import Store, get_store

__all__ = ["Store", "get_store"]
