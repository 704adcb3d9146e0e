"""Errors whose message is meant for an operator: the CLIs print them as one line and exit 2."""


class MachaError(Exception):
    """A problem the operator can act on; str(exc) is the whole message."""


class ConfigError(MachaError):
    pass


class JournalError(MachaError):
    pass


class StoreError(MachaError):
    pass


class BrokerError(MachaError):
    pass
