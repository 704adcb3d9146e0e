"""The one way an action is turned down, shared by validation, the host probe and the policy's callers."""

from __future__ import annotations


class ActionRefused(Exception):
    """A proposal that cannot be accepted or run; the message is the reason, in words for the audit log."""
