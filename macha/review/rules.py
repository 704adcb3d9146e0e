"""Layer 3's rules reviewer: a deterministic review of pending trigger events, one issue per group (pattern +
unit), and the catalog actions that fit them. It needs no model and says so in every review it writes."""

from __future__ import annotations

import re
from collections import defaultdict

from macha.core.severity import SEVERITY_RANK, Severity
from macha.core.states import ReviewStatus
from macha.core.units import suffix_group
from macha.actions.schemas import ProposedAction
from macha.review.schemas import ReviewIssue, ReviewReport
from macha.store.models import TriggerEvent

RULES_NOTE = "Rules reviewer (no model was used)"
MAX_EVIDENCE = 20
# "nginx.service: Failed with result 'exit-code'." -> nginx.service (the unit systemd reports, not the logger)
# Any non-space text before the type, not just the grammar's characters: a name outside the grammar is proposed
# whole and refused by the catalog, never cut down to a valid name it ends with.
_FAILED_UNIT = re.compile(rf"(\S+\.{suffix_group(('service', 'socket', 'mount', 'timer'))}): "
                          r"(?:Failed with result|Main process exited)")


def covered(events: list[TriggerEvent]) -> int:
    """Journal lines (and other events) a set of trigger events stands for: each is a group of repeats."""
    return sum(e.count or 1 for e in events)


def rules_review(events: list[TriggerEvent], note: str = "") -> ReviewReport:
    """One issue per group (pattern + unit); status from the worst severity."""
    groups: dict[tuple[str, str], list[TriggerEvent]] = defaultdict(list)
    for ev in events:
        groups[(ev.pattern_id or ev.trigger_type, (ev.meta or {}).get("unit") or "")].append(ev)
    issues = []
    for (pattern, unit), evs in groups.items():
        worst = min(evs, key=lambda e: SEVERITY_RANK[e.severity])
        title = worst.trigger_reason.split(":", 1)[0]
        issues.append(
            ReviewIssue(
                title=f"{title}{f' ({unit})' if unit else ''}"[:300],
                severity=worst.severity,
                subsystem=str((worst.meta or {}).get("subsystem", "other"))[:64],
                evidence_event_ids=[e.id for e in evs[:MAX_EVIDENCE]],
                occurrences=sum(e.count or 1 for e in evs),
            )
        )
    issues.sort(key=lambda i: (SEVERITY_RANK[i.severity], -i.occurrences))
    proposals = _fitting_actions(groups)
    worst_rank = SEVERITY_RANK[issues[0].severity] if issues else Severity.INFO.rank
    status = (ReviewStatus.CRITICAL if worst_rank == Severity.CRITICAL.rank
              else ReviewStatus.DEGRADED if worst_rank <= Severity.MEDIUM.rank else ReviewStatus.HEALTHY)
    if issues:
        top = "; ".join(f"{i.severity}: {i.title} x{i.occurrences}" for i in issues[:3])
        summary = f"{RULES_NOTE}.{note} {covered(events)} new event(s) in {len(issues)} group(s). {top}"
    else:
        summary = f"{RULES_NOTE}.{note} No new events."
    return ReviewReport(
        status=status,
        summary=summary[:4000],
        issues=issues,
        proposed_actions=proposals,
        should_escalate=status == ReviewStatus.CRITICAL,
        escalation_reason="critical events" if status == ReviewStatus.CRITICAL else None,
    )


def _fitting_actions(groups: dict[tuple[str, str], list[TriggerEvent]]) -> list[ProposedAction]:
    """Catalog actions that fit a group: a failed unit gets a restart (the policy decides whether it runs).

    Only systemd's own word counts: any local user can log "x.service: Failed with result ...", so a line whose
    sender (journald's trusted _PID) is not the system manager proposes nothing."""
    out: dict[str, ProposedAction] = {}
    for (pattern, _), evs in groups.items():
        if pattern != "unit_failed":
            continue
        for ev in evs:
            if not ((ev.meta or {}).get("sender") or {}).get("system_manager"):
                continue
            m = _FAILED_UNIT.search(ev.trigger_reason)
            if m and m[1] not in out:
                out[m[1]] = ProposedAction(
                    action="restart_service",
                    arguments={"unit": m[1]},
                    reason=f"{m[1]} failed ({len(evs)} event(s), e.g. #{ev.id})",
                )
    return list(out.values())
