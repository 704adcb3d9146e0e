"""Collectors: the journal, metrics, services, SAR."""
