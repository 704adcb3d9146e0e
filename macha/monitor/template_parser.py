"""A Drain-like template parser that keeps a message's wording apart from its values.

Drain merges two lines of one length when enough of their tokens agree, so ``link up`` and ``link down`` (or
``session opened`` and ``session closed``) end up as one ``link <*>`` template: the word that says what happened is
lost. Here a token without digits or masked values is wording, part of the message's shape, until its position has
held ``WORDS_BEFORE_VARIABLE`` different ones in otherwise-equal templates (user names, unit names, device names):
then those templates are merged into the oldest with ``<*>`` there, and the merged-away ids are reported so that
what was stored under them can be moved to the surviving id. Tokens with digits or masked values vary as in Drain.

Lines are split on whitespace and after ``=``, so that ``user=root`` compares as the key ``user=`` and the word
``root``; a template keeps the spacing of its first line, so its text reads like the log line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

WILDCARD = "<*>"
#: Share of a line's tokens that must equal a template's constant tokens for the line to join it (as in Drain, a
#: wildcard accepts any token but does not count as agreement, so that a template of wildcards attracts nothing).
SIMILARITY = 0.5
#: Different words seen at one position of otherwise-equal templates before that position is a variable.
WORDS_BEFORE_VARIABLE = 4
#: Most tokens kept in a template (a 16 KiB line would otherwise be a 16 KiB template).
MAX_TOKENS = 80
#: Whitespace-separated values in a row (each with a digit) that make one list token (_VALUE_RUN finds them).
VALUE_RUN = 3
#: Distinct masked lines remembered for the exact-match shortcut before it is emptied.
MAX_REMEMBERED = 10_000

_DIGIT = re.compile(r"\d")
_VALUE_RUN = re.compile(r"(?<!\S)[^\s<\d]*\d\S*\s+[^\s<\d]*\d\S*\s+[^\s<\d]*\d")
_TOKEN = re.compile(r"[^\s=]+=?|=")
#: wording: no digit and no masked value (<IP>, <*>)
_WORD = re.compile(r"[^\d<>]+")


def tokenize(text: str) -> tuple[list[str], list[bool]]:
    """The tokens of ``text`` and, for each, whether whitespace came before it (to write the template back)."""
    if "=" in text:
        tokens: list[str] = []
        spaced: list[bool] = []
        end = 0
        for m in _TOKEN.finditer(text):
            tokens.append(m.group())
            spaced.append(m.start() > end)
            end = m.end()
            if len(tokens) == MAX_TOKENS:
                break
        if spaced:
            spaced[0] = False
    else:  # the common case, without the regular expression
        tokens = text.split(maxsplit=MAX_TOKENS)[:MAX_TOKENS]
        spaced = [bool(tokens)] * len(tokens)
        if spaced:
            spaced[0] = False
    if _VALUE_RUN.search(text) is None:
        return tokens, spaced
    return _join_value_runs(tokens, spaced)


def _join_value_runs(tokens: list[str], spaced: list[bool]) -> tuple[list[str], list[bool]]:
    """A list of values (``blk_1 blk_2 blk_3 ...``) is one token: its length varies, its meaning does not."""
    out: list[str] = []
    out_spaced: list[bool] = []
    run = 0
    for token, space in zip(tokens, spaced):
        value = _DIGIT.search(token) is not None and not token.startswith("<")
        run = run + 1 if value and (space or not out) else (1 if value else 0)
        if run >= VALUE_RUN and space:
            if run == VALUE_RUN:  # the run just got long enough: fold its first tokens together
                first = len(out) - (VALUE_RUN - 1)
                out[first:] = [" ".join(out[first:])]
                out_spaced[first + 1:] = []
            out[-1] += " " + token
            continue
        out.append(token)
        out_spaced.append(space)
    return out, out_spaced


def render(tokens: list[str], spaced: list[bool]) -> str:
    return "".join((" " + t) if s else t for t, s in zip(tokens, spaced))


@lru_cache(maxsize=1 << 13)
def _is_word(token: str) -> bool:
    return _WORD.fullmatch(token) is not None


def _same_stem(a: str, b: str) -> bool:
    """``sda`` / ``sdb``, ``[LNKA]`` / ``[LNKC]``: one name with one letter changed is an instance, not another
    word."""
    return len(a) == len(b) >= 3 and sum(x != y for x, y in zip(a, b)) == 1


def _group_key(tokens: list[str]) -> tuple[int, str]:
    first = tokens[0] if tokens else ""
    if first and not (_is_word(first) or first.startswith("<")):
        first = WILDCARD
    return len(tokens), first


@dataclass
class Cluster:
    cluster_id: int
    tokens: list[str]
    spaced: list[bool]
    size: int = 0

    def template(self) -> str:
        return render(self.tokens, self.spaced)


def _fit(template: list[str], tokens: list[str], allowed: int) -> tuple[int, int] | None:
    """(agreeing tokens, wildcards) if ``tokens`` may join ``template``: no word conflict and at most ``allowed``
    tokens that neither agree nor fall on a wildcard. Stops at the first reason not to."""
    same = wild = 0
    for t, x in zip(template, tokens):
        if t == x:
            same += 1
        elif t == WILDCARD:
            wild += 1
        else:
            allowed -= 1
            if allowed < 0 or (_is_word(t) and _is_word(x) and not _same_stem(t, x)):
                return None
    return same, wild


def _one_word_apart(template: list[str], tokens: list[str], allowed: int) -> int | None:
    """The position of the only word that differs between ``template`` and ``tokens``, if they would otherwise
    join (at most ``allowed`` other tokens neither agree nor fall on a wildcard)."""
    position = None
    for i, (t, x) in enumerate(zip(template, tokens)):
        if t == x or t == WILDCARD:
            continue
        if _is_word(t) and _is_word(x) and not _same_stem(t, x):
            if position is not None:
                return None
            position = i
        else:
            allowed -= 1
            if allowed < 0:
                return None
    return position


@dataclass
class Parser:
    """Per-host template state: clusters by id, grouped by (token count, first token)."""

    clusters: dict[int, Cluster] = field(default_factory=dict)
    groups: dict[tuple[int, str], list[Cluster]] = field(default_factory=dict)
    last_id: int = 0
    #: merged-away id -> surviving id, for ids handed out before the merge
    aliases: dict[int, int] = field(default_factory=dict)
    _exact: dict[str, int] = field(default_factory=dict)

    def load(self, cluster_id: int, template: str, size: int, merged_into: int | None = None) -> None:
        """Restore a stored template (ids are never reused, so the counter follows every row given)."""
        self.last_id = max(self.last_id, cluster_id)
        if merged_into is not None:
            self.aliases[cluster_id] = merged_into
            return
        tokens, spaced = tokenize(template)
        self._insert(Cluster(cluster_id, tokens, spaced, size))

    def resolve(self, cluster_id: int) -> int:
        while cluster_id in self.aliases:
            cluster_id = self.aliases[cluster_id]
        return cluster_id

    def add(self, text: str) -> tuple[int, list[int]]:
        """Place a masked line: its cluster id, and the ids this line's arrival merged into that cluster."""
        known = self._exact.get(text)
        if known is not None:
            cluster = self.clusters[self.resolve(known)]
            cluster.size += 1
            return cluster.cluster_id, []
        tokens, spaced = tokenize(text)
        group = self.groups.setdefault(_group_key(tokens), [])
        best: Cluster | None = None
        best_key = (-1, -1)
        need = SIMILARITY * len(tokens)
        for cluster in group:
            fit = _fit(cluster.tokens, tokens, int(len(tokens) - need))
            if fit is not None and fit[0] >= need and fit > best_key:
                best, best_key = cluster, fit
        merged_away: list[int] = []
        if best is not None:
            for i, (t, x) in enumerate(zip(best.tokens, tokens)):
                if t != x and t != WILDCARD:
                    best.tokens[i] = WILDCARD
            best.size += 1
            cluster = best
        else:
            self.last_id += 1
            cluster = Cluster(self.last_id, tokens, spaced, 1)
            self._insert(cluster)
            cluster, merged_away = self._merge_family(cluster, group)
        if len(self._exact) >= MAX_REMEMBERED:
            self._exact.clear()
        self._exact[text] = cluster.cluster_id
        return cluster.cluster_id, merged_away

    def _insert(self, cluster: Cluster) -> None:
        self.clusters[cluster.cluster_id] = cluster
        self.groups.setdefault(_group_key(cluster.tokens), []).append(cluster)

    def _merge_family(self, new: Cluster, group: list[Cluster]) -> tuple[Cluster, list[int]]:
        """Merge ``new`` with the templates that differ from it by one word at one position, once that position
        has held enough different words to be a name rather than part of the message."""
        by_position: dict[int, list[Cluster]] = {}
        allowed = int(len(new.tokens) * (1 - SIMILARITY))
        for cluster in group:
            if cluster is new:
                continue
            position = _one_word_apart(cluster.tokens, new.tokens, allowed)
            if position is not None:
                by_position.setdefault(position, []).append(cluster)
        for position, family in by_position.items():
            words = {c.tokens[position] for c in family} | {new.tokens[position]}
            if len(words) < WORDS_BEFORE_VARIABLE:
                continue
            members = [*family, new]
            keep = min(members, key=lambda c: c.cluster_id)
            away = [c.cluster_id for c in members if c is not keep]
            for other in members:
                if other is keep:
                    continue
                for i, (t, x) in enumerate(zip(keep.tokens, other.tokens)):
                    if t != x:
                        keep.tokens[i] = WILDCARD
                keep.size += other.size
                self.aliases[other.cluster_id] = keep.cluster_id
                del self.clusters[other.cluster_id]
                group.remove(other)
            return keep, away
        return new, []
