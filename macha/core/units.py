"""systemd's unit-name grammar, in one place: the type suffixes, the characters, the full name, and the name as
systemctl reads what a person types (".service" added when no type is given).

Used by the action catalog (the unit parameter and the protected list), the service check (criticalServices),
the settings' validators, the rules reviewer and the meta model's tools.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

#: Every unit type systemd knows.
UNIT_SUFFIXES: tuple[str, ...] = (
    "service", "socket", "target", "device", "mount", "automount", "swap", "timer", "path", "slice", "scope",
)
#: The type systemctl assumes when a name has none.
DEFAULT_SUFFIX = "service"
UNIT_MAX = 255


class ActiveState(StrEnum):
    """systemd's ActiveState of a unit, as ``systemctl show`` and ``list-units`` report it (the states Macha
    compares with; a unit may report others, kept as the string it is)."""

    ACTIVE = "active"
    RELOADING = "reloading"
    INACTIVE = "inactive"
    FAILED = "failed"
    ACTIVATING = "activating"
    DEACTIVATING = "deactivating"

# systemd's unit-name grammar: ASCII letters, digits, ":", "-", "_", ".", "\" (for escapes), an optional
# "@instance", and a known type suffix. A leading "-" is refused as well: it would read as an option.
# _CHARS is the inside of a character class without its "-", which must stay last in a class.
_CHARS = r"A-Za-z0-9:_.\\"
UNIT_CHARS = rf"[{_CHARS}-]"
UNIT_NAME = re.compile(
    rf"(?P<prefix>{UNIT_CHARS}+?)(?:@(?P<instance>{UNIT_CHARS}*))?\.(?P<suffix>{'|'.join(UNIT_SUFFIXES)})"
)
#: A name without a type suffix, as typed: systemctl reads it as a service.
_BARE_NAME = re.compile(rf"{UNIT_CHARS}+(?:@{UNIT_CHARS}*)?")
#: What the settings take as a unit name (the type may be left out): the grammar's characters and "@".
UNIT_TEXT = re.compile(rf"[{_CHARS}@-]{{1,{UNIT_MAX}}}")
#: What the settings take as a unit name or a glob of names (fnmatch's "*", "?" and "[...]").
UNIT_GLOB = re.compile(rf"[{_CHARS}@*?\[\]-]{{1,{UNIT_MAX}}}")


class UnitNameError(ValueError):
    """Not a systemd unit name; the message says why, in words for an operator or the audit log."""


def suffix_group(suffixes: tuple[str, ...] = UNIT_SUFFIXES) -> str:
    """A regex group matching one of these type suffixes (all of them by default)."""
    unknown = set(suffixes) - set(UNIT_SUFFIXES)
    if unknown:
        raise ValueError(f"unknown unit types {sorted(unknown)}")
    return f"(?:{'|'.join(suffixes)})"


def has_suffix(name: str) -> bool:
    """Whether ``name`` ends in a unit type (".service", ".timer" ...)."""
    return name.rsplit(".", 1)[-1] in UNIT_SUFFIXES


def with_default_suffix(name: str) -> str:
    """``name`` with ".service" added when it names no unit type (no check of the rest of the grammar)."""
    return name if has_suffix(name) else f"{name}.{DEFAULT_SUFFIX}"


def lookup_names(name: str) -> list[str]:
    """The stored names a unit filter means: ``nginx`` is ``nginx`` (an identifier) or ``nginx.service``."""
    return [name] if has_suffix(name) else [name, f"{name}.{DEFAULT_SUFFIX}"]


def normalise(value: Any) -> str:
    """A systemd unit name, with ".service" added when no type suffix is given (as systemctl does); UnitNameError
    when ``value`` is not one."""
    if not isinstance(value, str):
        raise UnitNameError(f"unit must be a string, got {type(value).__name__}")
    name = value
    if not name:
        raise UnitNameError("unit name is empty")
    if name.startswith("-") and name not in ("-.mount", "-.slice"):
        raise UnitNameError(f"unit name {_show(name)} starts with '-' (it would read as an option)")
    if not has_suffix(name) and _BARE_NAME.fullmatch(name):
        name = f"{name}.{DEFAULT_SUFFIX}"
    if len(name) > UNIT_MAX:
        raise UnitNameError(f"unit name is longer than {UNIT_MAX} characters")
    if not UNIT_NAME.fullmatch(name):
        raise UnitNameError(f"{_show(value)} is not a systemd unit name (letters, digits, ':', '-', '_', '.', '\\' "
                            f"and '@', ending in a unit type such as .service)")
    return name


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
