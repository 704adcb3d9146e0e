"""Which SAR files to read: the directory sadc writes to, and its daily files of yesterday and today."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

#: Where sadc writes its daily files when sarDirectory is unset: Debian/NixOS, then Red Hat.
DEFAULT_DIRECTORIES = (Path("/var/log/sysstat"), Path("/var/log/sa"))
#: A saDD file last written this long before now belongs to an earlier month: sadc reuses the name.
_STALE = timedelta(days=3)


def find_directory(configured: str | None) -> tuple[Path | None, str | None]:
    """The SAR directory to read, or a note saying why there is none."""
    if configured:
        path = Path(configured)
        if not path.is_dir():
            return None, f"SAR directory {path} (sarDirectory) does not exist or is not a directory"
    else:
        path = next((d for d in DEFAULT_DIRECTORIES if d.is_dir()), None)
        if path is None:
            dirs = " or ".join(str(d) for d in DEFAULT_DIRECTORIES)
            return None, (f"no SAR data directory ({dirs}): sysstat is not collecting "
                          "(NixOS: services.sysstat.enable = true) or set sarDirectory")
    if not os.access(path, os.R_OK | os.X_OK):
        return None, f"SAR directory {path} is not readable by this user (permission denied)"
    return path, None


def daily_files(directory: Path, now: datetime) -> tuple[list[Path], list[str]]:
    """Yesterday's and today's files, oldest first, and notes on what was left out.

    Both names sadc uses: saDD (its default) and saYYYYMMDD (sadc -D); sarDD are sa2's text reports.
    """
    # sadc names its files by the local date, so "today" is the local one; reading yesterday's too covers the
    # samples written around midnight and a day Macha was down.
    today = now.astimezone().date()
    files: list[Path] = []
    notes: list[str] = []
    for day in (today - timedelta(days=1), today):
        for name in (f"sa{day:%d}", f"sa{day:%Y%m%d}"):
            path = directory / name
            if not path.is_file():
                continue
            if len(name) == 4:
                written = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
                if written < now - _STALE:
                    notes.append(f"{path} was last written {written:%Y-%m-%d}: an earlier month's file, skipped")
                    continue
            files.append(path)
    if not files and not notes:
        notes.append(f"no SAR files for {today - timedelta(days=1)} or {today} in {directory} (saDD or saYYYYMMDD)")
    return files, notes
