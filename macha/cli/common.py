"""What every Macha command shares: settings loading, logging, and errors as one line with exit code 2."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

from rich.text import Text

from macha.config import Settings, load_settings
from macha.core.entry import EXIT_ERROR, OneLineParser, operator_name, run
from macha.core.ids import MAX_ID, parse_id
from macha.core.text import printable


# The entry point helpers are re-exported: every command imports what it shares from here.
__all__ = ["EXIT_ERROR", "count_type", "id_type", "operator_name", "parser", "plain", "run", "seconds_type",
           "settings_from", "setup_logging"]


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = OneLineParser(prog=prog, description=description)
    p.add_argument("--config", type=Path, help="TOML settings file (default: $MACHA_CONFIG)")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    return p


def id_type(what: str) -> Callable[[str], int]:
    """An argparse type for the id of a ``what`` row: out of the database's range is one line naming it, before
    any query (a huge id crashes SQLite's driver)."""

    def parse(text: str) -> int:
        try:
            return parse_id(text, what)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def count_type(text: str) -> int:
    """An argparse type for a limit: a whole number from 1 up (SQL rejects or ignores the others)."""
    try:
        return parse_id(text, "limit")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number from 1 to {MAX_ID}") from None


def seconds_type(text: str) -> float:
    """An argparse type for a wait in seconds: finite and above zero."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a number of seconds above 0")
    return value


def plain(value: object, style: str = "", *, one_line: bool = False) -> Text:
    """Stored, log or model text for Rich: controls shown as escapes (macha.core.text.printable), and as a Text,
    so that neither markup (``[/]``, ``[link=...]``) nor emoji codes in it are read."""
    return Text(printable("" if value is None else str(value), one_line=one_line), style=style)


def settings_from(args: argparse.Namespace, **overrides: object) -> Settings:
    if args.config is not None:
        # Exported so that the worker processes and the Celery app read the same file.
        os.environ["MACHA_CONFIG"] = str(args.config.resolve())
    clean = {k: v for k, v in overrides.items() if v is not None}
    return load_settings(**clean)


def setup_logging(verbose: bool, level: str = "WARNING") -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
