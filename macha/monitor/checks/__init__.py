"""Layer 1 checks of one host: the journal (journal.py), metrics (metrics.py) and services (services.py)."""
