"""Child processes that die with their parent, so that no process of Macha outlives `macha-ai`, even one killed
with -9 (a process group cannot help there: nobody is left to signal it).

Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG)``) is sent to a process when the *thread* that forked it
exits. fork clears it and exec keeps it, so a process sets it on itself first thing and then checks that its parent
is still the one it was started by: a parent that died in between sent nothing. Start such children from a thread
that lives as long as its process (``macha-ai``'s main thread, the Celery worker's event loop).
"""

from __future__ import annotations

import ctypes
import os
import sys

#: From <linux/prctl.h>.
PR_SET_PDEATHSIG = 1

#: What `tied_argv` runs before the real program: set the signal, check the parent, become the program (same pid).
#: Standard library only, and `python -I -S`: it costs a few milliseconds.
_SHIM = (
    "import ctypes, os, sys\n"
    "sig, parent = int(sys.argv[1]), int(sys.argv[2])\n"
    f"if ctypes.CDLL(None, use_errno=True).prctl({PR_SET_PDEATHSIG}, sig, 0, 0, 0) != 0:\n"
    "    sys.exit('prctl(PR_SET_PDEATHSIG): ' + os.strerror(ctypes.get_errno()))\n"
    "if os.getppid() != parent:\n"
    "    sys.exit(1)\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)


def supported() -> bool:
    return sys.platform.startswith("linux")


def die_with_parent(sig: int, parent: int) -> None:
    """Have the kernel send ``sig`` to this process when its parent dies; exit at once if ``parent`` (the pid this
    process was started by) is gone already."""
    if not supported():  # pragma: no cover - Macha reads journald: Linux only
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent:
        # os._exit: this also runs inside Celery signal handlers, which would swallow a SystemExit.
        os._exit(1)


def tied_argv(argv: list[str], sig: int) -> list[str]:
    """``argv`` started so that it gets ``sig`` when this process dies: for a program that cannot set the signal
    itself (redis-server). It keeps the pid Popen reports."""
    if not supported():  # pragma: no cover
        return list(argv)
    return [sys.executable, "-I", "-S", "-c", _SHIM, str(int(sig)), str(os.getpid()), *argv]
