"""Macha: an AI sysadmin for Linux servers."""

__version__ = "0.1.0"
