"""What every Macha entry point shares, below the interfaces that may not import each other: argument errors and
failures as one line with exit code 2, and who runs the command."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable

from macha.core.errors import MachaError
from macha.core.text import printable

#: Health exit codes (0, 1) belong to macha.cli.report; every command shares this one.
EXIT_ERROR = 2


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own exit code 2 matches ours; keep it to one line
        # The message quotes what was typed (or pasted from a log): shown escaped.
        self.exit(EXIT_ERROR, f"{self.prog}: {printable(message, one_line=True)} (see --help)\n")


def run(prog: str, body: Callable[[], int]) -> None:
    """Run a command's body and exit with its code; an error is one line on stderr and exit code 2."""
    try:
        code = body()
    except MachaError as exc:
        # One line, whatever it quotes (ids, paths, log and model text): a newline or an escape sequence in a
        # quoted value can neither forge a second line nor drive the terminal.
        print(f"{prog}: {printable(str(exc).strip(), one_line=True)}", file=sys.stderr)
        code = EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - an operator gets a line, a developer asks for the traceback
        if os.environ.get("MACHA_DEBUG"):
            raise
        # Driver errors run on for lines (the SQL, its parameters): the first says what happened.
        first = (str(exc).strip().splitlines() or [""])[0]
        print(f"{prog}: internal error: {type(exc).__name__}: {printable(first, one_line=True)} (set MACHA_DEBUG=1 "
              "for the traceback)", file=sys.stderr)
        code = EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)


def operator_name() -> str:
    """Who runs the command, for the audit logs: the Unix user (its uid when it has no name)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"
