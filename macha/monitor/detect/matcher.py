"""One combined matcher over the pattern catalog (catalog.py), and its engines.

The matcher asks RE2's RegexSet (google-re2) which patterns match, in one pass over the line. Without RE2 it falls
back to one combined Python regex as a filter (most lines match nothing and are rejected by a single search) and
tests the patterns one by one only for the lines that pass.

Batches (``match_many``, what the journal reader uses) go through Hyperscan when it is there, with the same
answers: best through the compiled ``_hsmatch`` module (built against libhyperscan; a whole batch in C), else
through the ``hyperscan`` wheel as a filter in front of RE2.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import re
import re._constants as _sre
import re._parser as _sre_parse
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from macha.core.errors import ConfigError
from macha.monitor.detect.catalog import (
    Pattern,
    UnnamedRule,
    load_builtin,
    load_unnamed,
    load_with_user,
    unnamed_with_user,
)

log = logging.getLogger(__name__)

try:  # pragma: no cover - which branch runs depends on the machine
    import re2 as _re2
except ImportError:  # pragma: no cover
    _re2 = None


class Matcher:
    """Finds the catalog patterns (and known-benign entries) a message matches, in catalog order. It carries the
    rules for lines that no pattern names (``unnamed``; the built-in ones unless given)."""

    def __init__(self, patterns: list[Pattern], engine: Literal["auto", "re2", "python"] = "auto",
                 unnamed: list[UnnamedRule] | None = None):
        self.patterns = patterns
        self.unnamed = load_unnamed() if unnamed is None else unnamed
        self._set = None
        if engine in ("auto", "re2") and _re2 is not None and patterns:
            regex_set = _re2.Set.SearchSet(_re2.Options())
            for p in patterns:
                regex_set.Add(p.regex.pattern)
            regex_set.Compile()
            self._set = regex_set
        elif engine == "re2":
            raise ConfigError("the RE2 engine was asked for but google-re2 is not installed")
        self.engine = "re2" if self._set is not None else "python"
        # Built on first use of match_many: None (not yet), False (unavailable), or the scanner.
        self._compiled: Any = None if engine == "auto" else False
        self._hs: Any = None if engine == "auto" else False
        self._busy = 0.0
        # Hyperscan's scratch space (and the compiled scanner's buffers) serve one scan at a time.
        self._scan_lock = threading.Lock()
        self._batches = 0
        self._any = re.compile("|".join(_scoped(p.regex.pattern) for p in patterns)) if patterns else None

    def match_many(self, messages: list[str]) -> list[Sequence[Pattern]]:
        """``match`` for a batch, with the same answers. The sequences are shared and read-only: lines with the
        same patterns share one, and lines without a match share one empty list."""
        compiled = self._compiled_scanner()
        if compiled is not None:
            with self._scan_lock:
                found, exact = compiled.scan(messages)
            for i in exact:
                found[i] = self.match(messages[i])
            return found
        # With the hyperscan wheel the whole batch is scanned as one buffer in one pass, and only the lines it
        # flags are matched again, exactly, one by one: far fewer regex runs, but a Python call per match.
        scanner = self._batch_scanner()
        self._batches += 1
        # When most lines match (an attack in full swing), the pass only adds work: match line by line, and
        # look again every few batches.
        busy = self._busy > BUSY_FRACTION and self._batches % REPROBE_EVERY
        if scanner is None or len(messages) < 8 or busy:
            return [self.match(m) for m in messages]
        with self._scan_lock:
            flagged = scanner(messages)
        self._busy = len(flagged) / len(messages)
        out: list[Sequence[Pattern]] = [_NONE] * len(messages)
        for i in flagged:
            out[i] = self.match(messages[i])
        return out

    def _compiled_scanner(self):
        if self._compiled is None:
            self._compiled = _compiled_scanner(self.patterns) or False
        return self._compiled or None

    def _batch_scanner(self):
        if self._hs is False:
            return None
        if self._hs is None:
            self._hs = _hyperscan_scanner(self.patterns) or False
        return self._hs or None

    def match(self, message: str) -> list[Pattern]:
        if self._set is not None:
            hits = self._set.Match(message)
            return [self.patterns[i] for i in sorted(hits)] if hits else []
        if self._any is None or not self._any.search(message):
            return []
        return [p for p in self.patterns if p.regex.search(message)]


_NONE: list[Pattern] = []
#: Above this fraction of flagged lines in a batch, batches are matched line by line (re-checked every few).
BUSY_FRACTION = 0.25
REPROBE_EVERY = 16
_LEADING_FLAGS = re.compile(r"\(\?([imsx]+)\)")


def _scoped(source: str) -> str:
    """The regex as one alternative of a combined one: Python allows global flags ("(?i)...") only at the very
    start, so they become scoped ("(?i:...)")."""
    if m := _LEADING_FLAGS.match(source):
        return f"(?{m.group(1)}:{source[m.end():]})"
    return f"(?:{source})"


def _compiled_scanner(patterns: list[Pattern]):
    """The compiled batch scanner, or None without it (not built, no Hyperscan on this machine) or when a pattern
    does not compile for Hyperscan even as a prefilter."""
    try:
        from macha.monitor.detect import _hsmatch
    except ImportError:
        return None
    if not patterns:
        return None
    exprs, flags = [], []
    for p in patterns:
        source = p.regex.pattern.encode("utf-8", "surrogateescape")
        flag = _hsmatch.FLAG_ALLOWEMPTY
        if b"\0" in source:
            return None
        if _hsmatch.valid(source, flag) is not None:
            # Hyperscan cannot run it exactly: it flags lines, and the exact matcher decides for those.
            flag |= _hsmatch.FLAG_PREFILTER
            if (why := _hsmatch.valid(source, flag)) is not None:
                log.warning("pattern %r does not compile for Hyperscan (%s); batches are matched line by line",
                            p.id, why)
                return None
        exprs.append(source)
        flags.append(flag)
    crossing = [can_span_lines(p.regex.pattern) for p in patterns]
    try:
        return _hsmatch.Scanner(exprs, flags, crossing, patterns, _NONE)
    except _hsmatch.error as exc:
        log.warning("Hyperscan cannot compile the pattern set (%s); batches are matched line by line", exc)
        return None


_NEWLINE = ord("\n")
#: Classes that contain the newline.
_NEWLINE_CATEGORIES = {_sre.CATEGORY_SPACE, _sre.CATEGORY_NOT_DIGIT, _sre.CATEGORY_NOT_WORD, _sre.CATEGORY_LINEBREAK}
_SAFE_CATEGORIES = {_sre.CATEGORY_NOT_SPACE, _sre.CATEGORY_DIGIT, _sre.CATEGORY_WORD, _sre.CATEGORY_NOT_LINEBREAK}


def can_span_lines(source: str) -> bool:
    """Whether some match of the regex can contain a newline; True when unsure. The batch scanner trusts a match
    of a pattern that cannot (it lies within one line) and looks at a line alone again for one that can."""
    # Where Python and PCRE read a regex differently, assume the worst: POSIX classes ("[[:space:]]" is a
    # set of characters to Python) and "\v" (vertical space, with the newline, to PCRE).
    if "[:" in source or "\\v" in source:
        return True
    try:
        parsed = _sre_parse.parse(source)
    except Exception:  # noqa: BLE001 - unknown syntax: assume it can
        return True
    return _consumes_newline(parsed, bool(parsed.state.flags & _sre.SRE_FLAG_DOTALL))


def _consumes_newline(items: Any, dotall: bool) -> bool:
    for op, av in items:
        if op is _sre.LITERAL:
            if av == _NEWLINE:
                return True
        elif op is _sre.NOT_LITERAL:
            if av != _NEWLINE:
                return True
        elif op is _sre.ANY:
            if dotall:
                return True
        elif op is _sre.IN:
            if _class_has_newline(av):
                return True
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT):
            if _consumes_newline(av[2], dotall):
                return True
        elif op is _sre.SUBPATTERN:
            _group, add, remove, sub = av
            inner = (dotall or bool(add & _sre.SRE_FLAG_DOTALL)) and not remove & _sre.SRE_FLAG_DOTALL
            if _consumes_newline(sub, inner):
                return True
        elif op is _sre.BRANCH:
            if any(_consumes_newline(sub, dotall) for sub in av[1]):
                return True
        elif op is _sre.ATOMIC_GROUP:
            if _consumes_newline(av, dotall):
                return True
        elif op is not _sre.AT:  # anchors consume nothing; anything else: assume it can
            return True
    return False


def _class_has_newline(items: Any) -> bool:
    negate, has = False, False
    for op, av in items:
        if op is _sre.NEGATE:
            negate = True
        elif op is _sre.LITERAL:
            has |= av == _NEWLINE
        elif op is _sre.RANGE:
            has |= av[0] <= _NEWLINE <= av[1]
        elif op is _sre.CATEGORY and av in _NEWLINE_CATEGORIES:
            has = True
        elif not (op is _sre.CATEGORY and av in _SAFE_CATEGORIES):
            return True
    return has != negate


def _hyperscan_scanner(patterns: list[Pattern]):
    """A function flagging the lines of a batch that any pattern may match, or None without Hyperscan (or when a
    pattern does not compile for it: the exact matcher then does all the work)."""
    try:
        import hyperscan
    except ImportError:
        return None
    if not patterns:
        return None
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    exprs = [p.regex.pattern.encode() for p in patterns]
    try:
        db.compile(expressions=exprs, ids=list(range(len(exprs))), elements=len(exprs),
                   flags=[hyperscan.HS_FLAG_MULTILINE] * len(exprs))
    except hyperscan.error as exc:
        log.warning("Hyperscan cannot compile the pattern set (%s); matching line by line", exc)
        return None

    def scan(messages: list[str]) -> set[int]:
        text = "\n".join(messages)
        buf = text.encode("utf-8", "surrogateescape")
        flagged: set[int] = set()
        starts: list[int] = []

        def line_starts() -> list[int]:
            # Byte offset where each line starts; computed only when something matched (quiet batches skip it).
            sizes = map(len, messages) if len(buf) == len(text) else \
                (len(m.encode("utf-8", "surrogateescape")) for m in messages)
            return list(itertools.accumulate((n + 1 for n in sizes), initial=0))[:-1]

        def on_match(_id: int, _start: int, end: int, _flags: int, _ctx: Any) -> None:
            # A match ending at byte e belongs to the last line starting at or before e. One spanning two lines
            # only flags a line for the exact check, which drops it.
            if not starts:
                starts.extend(line_starts())
            flagged.add(bisect.bisect_right(starts, max(end - 1, 0)) - 1)

        db.scan(buf, match_event_handler=on_match)
        return flagged

    return scan


_default: Matcher | None = None
_by_file: dict[str, tuple[Matcher, list[str]]] = {}


def default_matcher() -> Matcher:
    global _default
    if _default is None:
        _default = Matcher(load_builtin())
    return _default


def matcher_for(user_file: Path | None) -> tuple[Matcher, list[str]]:
    """The matcher for the built-ins plus an operator's file (cached per process), and the problems found."""
    if user_file is None:
        return default_matcher(), []
    key = str(user_file)
    if key not in _by_file:
        patterns, problems = load_with_user(user_file)
        unnamed, more = unnamed_with_user(user_file)
        _by_file[key] = (Matcher(patterns, unnamed=unnamed), problems + more)
    return _by_file[key]
