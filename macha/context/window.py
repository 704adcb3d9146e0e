"""The context window: every prompt's view of a host, built from the store each time within an exact token budget.

Sections have priorities and shares of the budget. A section needing less than its share lends the rest to the
more important ones; a section over its allowance is shown at a coarser level of detail, and the coarsest level is
cut with a visible marker. The total, counted with the same tokenizer, never exceeds the budget.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from macha.context import sections as sec
from macha.context.recall import NoMemory, Recall
from macha.context.tokens import count, truncate
from macha.llm.prompts import fence_lines
from macha.store.db import Store
from macha.store.models import utcnow

log = logging.getLogger(__name__)
CUT = "[... {n} more line(s) cut to fit the context budget]"


@dataclass
class Rendered:
    name: str
    text: str
    tokens: int
    level: int
    cut_lines: int = 0


@dataclass
class Window:
    hostname: str
    budget: int
    sections: list[Rendered]
    event_ids: set[int] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n\n".join(r.text for r in self.sections if r.text)

    @property
    def tokens(self) -> int:
        return count(self.text)


def _wrap(content: sec.Content, lines: list[str]) -> str:
    # Sections are cut line by line: one stored line is one line here, whatever line breaks it holds.
    return f"## {content.title}\n{fence_lines(content.name, lines)}"


def render_section(content: sec.Content, allowance: int) -> Rendered:
    """The finest level that fits ``allowance`` tokens, else the coarsest level cut to fit (maybe to nothing)."""
    last: list[str] = []
    for level, build in enumerate(content.levels):
        last = build()
        text = _wrap(content, last)
        n = count(text)
        if n <= allowance:
            return Rendered(content.name, text, n, level)
    return _cut(content, last, allowance, len(content.levels) - 1)


def _cut(content: sec.Content, lines: list[str], allowance: int, level: int) -> Rendered:
    overhead = count(_wrap(content, [CUT.format(n=len(lines))]))
    room = allowance - overhead
    keep: list[str] = []
    used = 0
    for line in lines:
        n = count(line) + 1
        if used + n > room:
            if not keep and room > 8:
                # One huge line: keep its head rather than nothing.
                keep.append(truncate(line, room - 4) + " …")
            break
        keep.append(line)
        used += n
    while True:
        shown = keep + [CUT.format(n=len(lines) - len(keep))] if len(keep) < len(lines) else keep
        text = _wrap(content, shown)
        n = count(text)
        if n <= allowance:
            return Rendered(content.name, text, n, level, cut_lines=len(lines) - len(keep))
        if not keep:
            return Rendered(content.name, "", 0, level, cut_lines=len(lines))
        keep.pop()


def allowances(contents: list[sec.Content], budget: int, needs: dict[str, int]) -> dict[str, int]:
    """Each section's share of ``budget``; what a section does not need goes to the others, most important first."""
    alloc = {c.name: int(budget * c.share) for c in contents}
    spare = budget - sum(alloc.values())
    for c in contents:
        if needs[c.name] < alloc[c.name]:
            spare += alloc[c.name] - needs[c.name]
            alloc[c.name] = needs[c.name]
    for c in sorted(contents, key=lambda c: c.priority):
        want = needs[c.name] - alloc[c.name]
        if want > 0 and spare > 0:
            give = min(want, spare)
            alloc[c.name] += give
            spare -= give
    return alloc


def assemble(hostname: str, contents: list[sec.Content], budget: int) -> Window:
    """Render the sections within ``budget`` tokens; sections appear in priority order."""
    contents = sorted(contents, key=lambda c: c.priority)
    total_share = sum(c.share for c in contents) or 1.0
    for c in contents:
        c.share = c.share / total_share
    finest = {c.name: _wrap(c, c.levels[0]()) for c in contents}
    needs = {name: count(text) for name, text in finest.items()}
    alloc = allowances(contents, budget, needs)
    rendered = {c.name: (Rendered(c.name, finest[c.name], needs[c.name], 0) if needs[c.name] <= alloc[c.name]
                         else render_section(c, alloc[c.name])) for c in contents}
    window = Window(hostname, budget, [rendered[c.name] for c in contents])
    # Joining sections can change the count by a token or two at the seams: take it from the least important.
    excess = window.tokens - budget
    for c in reversed(contents):
        if excess <= 0:
            break
        r = rendered[c.name]
        if r.tokens == 0:
            continue
        rendered[c.name] = render_section(c, max(0, r.tokens - excess - 2))
        window = Window(hostname, budget, [rendered[x.name] for x in contents])
        excess = window.tokens - budget
    for c in contents:
        r = rendered[c.name]
        if r.level > 0 or r.cut_lines:
            window.notes.append(f"{c.name}: level {r.level}" + (f", {r.cut_lines} line(s) cut" if r.cut_lines
                                                                  else ""))
        if r.text and r.level <= 1:
            window.event_ids |= c.event_ids
    return window


def build_window(store: Store, hostname: str, budget: int, *, autonomy_level: str = "suggest",
                 up_to_event_id: int | None = None, recall: Recall = NoMemory(), similar_issues: int = 5,
                 now: datetime | None = None, include: set[str] | None = None) -> Window:
    """The host's window from the store; ``recall`` (semantic memory, or NoMemory) recalls past issues like the new
    events."""
    now = now or utcnow()
    with store.session() as s:
        events = sec.new_events(s, hostname, up_to_event_id)
        builders = {
            "host": lambda: sec.header(s, hostname, now, autonomy_level),
            "events": lambda: events,
            "services": lambda: sec.failing_services(s, hostname),
            "fleet": lambda: sec.fleet(s, hostname, now),
            "metrics": lambda: sec.metrics(s, hostname, now),
            "issues": lambda: sec.issues_and_approvals(s, hostname, now),
            "memory": lambda: sec.memories(*recalled(recall, hostname, events.query_texts, similar_issues)),
            "reviews": lambda: sec.last_analyses(s, hostname),
            "sar": lambda: sec.sar(s, hostname, now),
            "history": lambda: sec.history(s, hostname, now),
        }
        contents = [build() for name, build in builders.items() if include is None or name in include]
        return assemble(hostname, contents, budget)

def recalled(recall: Recall, hostname: str, texts: list[str], k: int) -> tuple[list, str | None]:
    """Past issues most like ``texts``; memory being off or down is a note in the window, never a failure."""
    if recall.absent is not None:
        return [], recall.absent
    if not texts or k <= 0:
        return [], None
    try:
        return recall.similar_issues(texts, k, hostname=hostname), None
    except Exception as exc:  # noqa: BLE001 - any memory failure degrades the window, not the review
        log.warning("semantic memory unavailable: %s", exc)
        return [], f"semantic memory unavailable: {str(exc)[:200]}"
