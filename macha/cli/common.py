"""What every Macha command shares: settings loading, logging, and errors as one line with exit code 2."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from macha.config import Settings, load_settings
from macha.errors import MachaError

#: Health exit codes (0, 1) belong to macha.report; every command shares this one.
EXIT_ERROR = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own exit code 2 matches ours; keep it to one line
        self.exit(EXIT_ERROR, f"{self.prog}: {message} (see --help)\n")


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = _Parser(prog=prog, description=description)
    p.add_argument("--config", type=Path, help="TOML settings file (default: $MACHA_CONFIG)")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    return p


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


def run(prog: str, body: Callable[[], int]) -> None:
    try:
        code = body()
    except MachaError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        code = EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - an operator gets a line, a developer asks for the traceback
        if os.environ.get("MACHA_DEBUG"):
            raise
        print(f"{prog}: internal error: {type(exc).__name__}: {exc} (set MACHA_DEBUG=1 for the traceback)",
              file=sys.stderr)
        code = EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)
