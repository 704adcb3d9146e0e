"""Masks for the variable parts of a log message (addresses, times, numbers, ids), applied before template mining.

All masks run as one regular expression in one pass: at each place the first alternative that matches wins, so
they are listed most specific first (a time before the numbers in it, an IP before its digits). Which masks to
use was measured against Loghub's labelled templates (see BENCHMARKS.md, "Template mining").
"""

from __future__ import annotations

import re

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_CLOCK = r"\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?"

MASKS: tuple[tuple[str, str], ...] = (
    # 2026-11-29T22:02:35.123+00:00, "Sun Jul 17 12:34:56 EDT 2005", "Jul 17 12:34:56", a bare 12:34:56
    ("TIME", rf"(?<![\w:])(?:\d{{4}}-\d{{2}}-\d{{2}}[T ]{_CLOCK}(?:Z|[+-]\d{{2}}:?\d{{2}})?"
             rf"|(?:{_DAY},?\s+)?{_MONTH}\s+\d{{1,2}},?\s+{_CLOCK}(?:\s+[A-Z]{{3,4}})?(?:\s+\d{{4}})?"
             rf"|{_CLOCK})(?![\w:])"),
    ("UUID", r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
    # an SSH key fingerprint: "RSA SHA256:7Qz...", "MD5:12:ab:..."
    ("KEY", r"\b(?:SHA256|SHA1|MD5):[A-Za-z0-9+/=:]{16,}"),
    ("EMAIL", r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w.-])"),
    ("IP", r"(?<![\w.:])(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?(?![\w.])"),
    ("MAC", r"(?<![\w:])(?:[0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}(?![\w:])"),
    ("HEX", r"\b0x[0-9a-fA-F]+\b"),
    ("PATH", r"(?<![\w/])(?:/[\w.@+-]+){2,}/?"),
    # counts, sizes, percentages and durations
    ("NUM", r"(?<![\w.-])[-+]?\d+(?:\.\d+)?(?:[kKMGTP]i?B?|ms|us|µs|ns|s|min|h|%)?(?![\w.-])"),
)

# Every mask starts where no word character precedes it: checking that first skips the inside of words quickly.
_ALL = re.compile(r"(?<!\w)(?:" + "|".join(f"(?P<{name}>{pattern})" for name, pattern in MASKS) + ")")


def _placeholder(m: re.Match[str]) -> str:
    return f"<{m.lastgroup}>"


def mask(message: str) -> str:
    """``message`` with its variable parts replaced by ``<IP>``, ``<NUM>`` and the like."""
    return _ALL.sub(_placeholder, message)
