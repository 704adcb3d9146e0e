"""Run one argv list: no shell, a clean environment, a timeout that kills the whole process group, bounded output."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass


class CommandNotFound(Exception):
    pass


def clean_env() -> dict[str, str]:
    # Nothing from the worker's environment leaks into actions but the search path; no pager, no colour.
    return {
        "PATH": os.environ.get("PATH", "/run/current-system/sw/bin:/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "SYSTEMD_PAGER": "",
        "SYSTEMD_COLORS": "0",
        "PAGER": "cat",
    }


def resolve(program: str) -> str:
    path = shutil.which(program, path=clean_env()["PATH"])
    if path is None:
        raise FileNotFoundError(f"{program} is not installed (not found on PATH)")
    return path


@dataclass
class CommandResult:
    argv: list[str]
    exit_code: int | None
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False
    error: str | None = None


def _keep(data: bytes, limit: int, head: int | None, tail: int | None) -> str:
    text = data.decode("utf-8", "replace")
    if head is not None:
        text = "\n".join(text.splitlines()[:head])
    if tail is not None:
        text = "\n".join(text.splitlines()[-tail:])
    if len(text) > limit:
        text = text[:limit] + f"\n[... output cut at {limit} characters]"
    return text


def run_argv(argv: list[str], *, timeout: float, max_output: int, head: int | None = None,
             tail: int | None = None) -> CommandResult:
    start = time.monotonic()
    try:
        program = resolve(argv[0])
    except FileNotFoundError as exc:
        return CommandResult(argv, None, "", "", 0.0, error=str(exc))
    # Own process group, so a timeout kills what the command started too.
    proc = subprocess.Popen(
        [program, *argv[1:]], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=clean_env(), start_new_session=True, cwd="/",
    )
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
    return CommandResult(
        argv=argv,
        exit_code=proc.returncode,
        stdout=_keep(out, max_output, head, tail),
        stderr=_keep(err, max_output, None, None),
        duration_s=time.monotonic() - start,
        timed_out=timed_out,
        error=f"timed out after {timeout:.0f} s and was killed" if timed_out else None,
    )
