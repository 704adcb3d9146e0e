"""What the read modules share: the bound on every listing, pydantic errors as one line, and host lookup."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from macha.core.timespec import TimeSpecError, parse_time
from macha.read.errors import ReadError, UnknownHost
from macha.store.models import Host

#: No listing returns more rows than this, whatever a caller asks: results travel to terminals, browsers and
#: MCP clients.
MAX_LIMIT = 1000

M = TypeVar("M", bound=BaseModel)


def when(value: Any) -> Any:
    """A pydantic before-validator for times: a string is read as journalctl reads --since (``-1h``, ``today``,
    ISO); a datetime passes through (made UTC-aware by the field)."""
    if isinstance(value, str):
        return parse_time(value)
    return value


def build(model: type[M], **fields: Any) -> M:
    """``model(**fields)``, with a validation failure as one ReadError line naming the field."""
    try:
        return model.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ())) or "query"
        ctx = err.get("ctx") or {}
        cause = ctx.get("error")
        msg = str(cause) if isinstance(cause, TimeSpecError) else err.get("msg", "invalid")
        raise ReadError(f"{where.replace('_', '-')}: {msg}") from None


def require_host(session: Session, hostname: str) -> Host:
    host = session.execute(select(Host).where(Host.hostname == hostname)).scalar_one_or_none()
    if host is None:
        known = list(session.execute(select(Host.hostname).order_by(Host.hostname).limit(11)).scalars())
        raise UnknownHost(hostname, known)
    return host
