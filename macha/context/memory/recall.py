"""Reviews remembered as issues and decisions, and similar past issues recalled for the window."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from macha.context.memory.errors import guard
from macha.context.memory.metadata import clean_metadata
from macha.context.memory.store import Hit, MemoryStore


def _action_line(action: Mapping[str, Any]) -> str:
    name = action.get("action") or action.get("name") or "action"
    args = action.get("arguments") or {}
    arg_text = " ".join(f"{k}={v}" for k, v in args.items()) if isinstance(args, Mapping) else str(args)
    reason = action.get("reason") or ""
    return f"- {name}{f' {arg_text}' if arg_text else ''}{f': {reason}' if reason else ''}"


class ReviewRecall(MemoryStore):
    """Reviews to `issues` and `decisions`; past issues like the new ones."""

    def remember_review(self, review_id: int, hostname: str, created_at: datetime | str, status: str,
                        summary: str, issues: Sequence[Mapping[str, Any]],
                        actions: Sequence[Mapping[str, Any]] = (), issue_id: int | None = None) -> int:
        """Each issue to `issues` (review-{id}-issue-{n}), the decision to `decisions` (review-{id}); both name
        the issue (issues.id, macha-issues) the review belongs to, when it has one.

        Idempotent: a review sent again replaces its records. Returns the number of records written.
        """
        when = created_at.isoformat() if isinstance(created_at, datetime) else str(created_at)
        base = {"review_id": int(review_id), "hostname": hostname, "created_at": when, "status": status}
        if issue_id is not None:
            base["issue_id"] = int(issue_id)
        if isinstance(created_at, datetime):
            base["created_ts"] = created_at.timestamp()
        ids, docs, metas = [], [], []
        for n, issue in enumerate(issues):
            title = str(issue.get("title") or "").strip() or "(untitled issue)"
            detail = str(issue.get("description") or issue.get("detail") or "").strip()
            evidence = issue.get("evidence_event_ids", issue.get("evidence_ids", issue.get("evidence", [])))
            ids.append(f"review-{review_id}-issue-{n}")
            docs.append(f"{title}\n{detail}" if detail else title)
            metas.append(clean_metadata(base | {
                "n": n, "title": title[:300], "severity": issue.get("severity"), "subsystem": issue.get("subsystem"),
                "occurrences": int(issue.get("occurrences") or 1), "evidence_event_ids": evidence,
            }))
        if ids:
            self._upsert("issues", ids, docs, metas)
        with self._collection("issues", write=True) as col, guard("pruning issues"):
            # A review written again with fewer issues must not keep the old tail.
            old = col.get(where={"review_id": int(review_id)}, include=[])["ids"]
            stale = sorted(set(old) - set(ids))
            if stale:
                col.delete(ids=stale)
        lines = [summary.strip() or f"Review {review_id}: {status}"]
        if actions:
            lines += ["Proposed actions:", *(_action_line(a) for a in actions)]
        self._upsert("decisions", [f"review-{review_id}"], ["\n".join(lines)], [clean_metadata(base | {
            "issue_count": len(ids), "action_count": len(actions),
            "actions": [str(a.get("action") or a.get("name") or "") for a in actions],
        })])
        return len(ids) + 1

    def similar_issues(self, texts: Sequence[str], k: int = 5, hostname: str | None = None) -> list[Hit]:
        """The k nearest past issues over several query texts; one per (host, title), the nearest of them."""
        texts = [t for t in texts if t and t.strip()]
        if k <= 0 or not texts:
            return []
        # More than k each: several reviews often record the same issue, and those collapse into one.
        per_text = self._query("issues", self.embed(texts), k * 3, {"hostname": hostname} if hostname else None)
        best: dict[tuple[str, str], Hit] = {}
        for hits in per_text:
            for hit in hits:
                key = (str(hit.metadata.get("hostname", "")), str(hit.metadata.get("title", hit.text)).lower())
                if key not in best or hit.distance < best[key].distance:
                    best[key] = hit
        return sorted(best.values(), key=lambda r: r.distance)[:k]
