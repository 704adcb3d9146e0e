"""Chat with the meta model (macha-chat): conversations are stored, each question is answered by a task on the gpu
queue with the same read-only tools as an analysis, and the answer's tokens are streamed to the asker through a
Redis stream (``macha:chat:<message id>``) while it is written."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import select, update

from macha.actions.audit import history as audit_history
from macha.config import Settings
from macha.context.recall import NoMemory, Recall
from macha.context.tokens import count, truncate
from macha.context.window import build_window
from macha.core.errors import MachaError
from macha.core.followups import FollowUps
from macha.core.states import ChatEvent, ChatStatus
from macha.llm.base import Backend, LLMError
from macha.llm.prompts import fence, render
from macha.meta import tools
from macha.meta.loop import Limits, Stopped, run_loop
from macha.review.model_turn import catalog_lines, prompt_budget
from macha.store.db import Store
from macha.store.models import Action, ChatMessage, Conversation, Escalation, utcnow

log = logging.getLogger(__name__)
STREAM_TTL_S = 3600
#: The share of the prompt budget for the host's context window; the rest is the topic and the conversation.
WINDOW_SHARE = 0.5


class ChatError(MachaError):
    pass


def stream_key(message_id: int) -> str:
    return f"macha:chat:{message_id}"


class ChatAnswer(BaseModel):
    message_id: int
    answer_id: int | None
    #: the question's status, or missing: there is no such message
    status: ChatStatus | Literal["missing"]
    content: str = ""
    error: str | None = None
    tool_calls: int = 0


def start(store: Store, hostname: str, *, approval_id: int | None = None, escalation_id: int | None = None,
          created_by: str = "") -> int:
    """A new conversation; one about an approval or an analysis must name one that exists."""
    with store.session() as s:
        title = ""
        if approval_id is not None:
            action = s.get(Action, approval_id)
            if action is None:
                raise ChatError(f"there is no action #{approval_id} (see macha-approve list)")
            hostname, title = action.hostname, f"approval #{action.id}: {action.action}"
        if escalation_id is not None:
            esc = s.get(Escalation, escalation_id)
            if esc is None:
                raise ChatError(f"there is no analysed issue #{escalation_id}")
            hostname, title = esc.hostname, f"issue #{esc.id}: {esc.reason[:200]}"
        conv = Conversation(hostname=hostname, title=title[:300], approval_id=approval_id,
                            escalation_id=escalation_id, created_by=created_by[:128])
        s.add(conv)
        s.flush()
        return conv.id


def ask(store: Store, conversation_id: int, text: str) -> int:
    text = text.strip()
    if not text:
        raise ChatError("the question is empty")
    with store.session() as s:
        if s.get(Conversation, conversation_id) is None:
            raise ChatError(f"there is no conversation #{conversation_id}")
        msg = ChatMessage(conversation_id=conversation_id, role="user", content=text[:20000], status=ChatStatus.PENDING)
        s.add(msg)
        s.flush()
        return msg.id


def topic_text(store: Store, conv: Conversation) -> str:
    """What the conversation is about, as data for the prompt: the approval with its evidence, or the analysis."""
    with store.session() as s:
        if conv.approval_id is not None:
            a = s.get(Action, conv.approval_id)
            trail = audit_history(s, action_id=a.id)
            lines = [f"approval #{a.id} on {a.hostname}: {a.action} {json.dumps(a.arguments)}",
                     f"status {a.status}; risk {a.risk} (set by the catalog); proposed by {a.proposer}",
                     f"reason given: {a.reason}", f"evidence: {json.dumps(a.evidence)[:3000]}"]
            lines += [f"audit: {r.time.isoformat()[:19]} {r.event} by {r.actor}: {r.reason}" for r in trail[-10:]]
            return fence("the approval being discussed", "\n".join(lines))
        if conv.escalation_id is not None:
            e = s.get(Escalation, conv.escalation_id)
            lines = [f"issue #{e.id} on {e.hostname} ({e.kind}, {e.status}): {e.reason}",
                     f"analysis: {json.dumps(e.result)[:4000]}"]
            lines += [f"tool {t.get('tool')}({json.dumps(t.get('arguments'))[:200]}): {str(t.get('result'))[:300]}"
                      for t in (e.transcript or [])[:8]]
            return fence("the issue being followed up", "\n".join(lines))
    return ""


def _history(store: Store, conv_id: int, before_id: int, budget: int) -> list[dict[str, str]]:
    """Earlier turns, newest kept first when the budget runs out."""
    with store.session() as s:
        rows = s.execute(select(ChatMessage).where(
            ChatMessage.conversation_id == conv_id, ChatMessage.id < before_id,
            (ChatMessage.role == "assistant") | (ChatMessage.status == ChatStatus.ANSWERED)
        ).order_by(ChatMessage.id.desc()).limit(40)).scalars().all()
    out: list[dict[str, str]] = []
    used = 0
    for r in rows:
        n = count(r.content) + 4
        if used + n > budget:
            break
        out.append({"role": r.role, "content": r.content})
        used += n
    return list(reversed(out))


def answer(store: Store, settings: Settings, message_id: int, backend: Backend, *,
           publish: Callable[[str, str], None], recall: Recall = NoMemory(),
           follow: FollowUps | None = None) -> ChatAnswer:
    """Answer one pending question; every outcome, a failure too, is stored and published (done / error).
    Diagnostics the tools made ready are added to ``follow`` as they happen (sent even if the answer fails)."""
    with store.session() as s:
        msg = s.get(ChatMessage, message_id)
        if msg is None:
            return ChatAnswer(message_id=message_id, answer_id=None, status="missing")
        # Claimed by a conditional update: a redelivered task does not answer the same question twice.
        won = s.execute(update(ChatMessage)
                        .where(ChatMessage.id == message_id, ChatMessage.status == ChatStatus.PENDING)
                        .values(status=ChatStatus.ANSWERING).execution_options(synchronize_session=False)).rowcount
        if won != 1:
            return ChatAnswer(message_id=message_id, answer_id=None, status=msg.status)
        conv = s.get(Conversation, msg.conversation_id)
        s.expunge(conv)
        question = msg.content
    try:
        return _answer(store, settings, message_id, conv, question, backend, publish, recall,
                       follow if follow is not None else FollowUps())
    except BaseException as exc:
        # Whatever stopped it (a store error, the task's time limit), the asker hears it and the question is
        # marked, not left "answering".
        error = str(exc) if isinstance(exc, LLMError) else f"the answer failed: {type(exc).__name__}: {exc}"
        with store.session() as s:
            s.execute(update(ChatMessage).where(ChatMessage.id == message_id)
                      .values(status=ChatStatus.FAILED, error=error[:2000]))
        publish(ChatEvent.ERROR, error)
        if isinstance(exc, Exception):
            return ChatAnswer(message_id=message_id, answer_id=None, status=ChatStatus.FAILED, error=error)
        raise


def _answer(store: Store, settings: Settings, message_id: int, conv: Conversation, question: str,
            backend: Backend, publish: Callable[[str, str], None], recall: Recall,
            follow: FollowUps) -> ChatAnswer:
    model = settings.meta_model
    plan, key = prompt_budget(store, backend, settings, model)
    system = render("chat_system", hostname=conv.hostname, catalog=catalog_lines(),
                    tools=", ".join(tools.TOOLS), max_tool_calls=settings.meta.max_tool_calls)
    topic = topic_text(store, conv)
    room = plan.prompt_tokens - count(system) - count(topic) - count(question) - 64
    tool_room = min(settings.meta.max_tool_calls * settings.meta.tool_result_tokens, room // 3)
    window = build_window(store, conv.hostname, max(128, int((room - tool_room) * WINDOW_SHARE)),
                          autonomy_level=settings.autonomy_level, recall=recall,
                          similar_issues=settings.memory.similar_issues)
    context = f"The host as Macha sees it now:\n{window.text}" + (f"\n\n{topic}" if topic else "")
    history = _history(store, conv.id, message_id, max(0, room - tool_room - window.tokens))
    messages = ([{"role": "system", "content": system}, {"role": "user", "content": context},
                 {"role": "assistant", "content": "Understood. What would you like to know?"}]
                + history + [{"role": "user", "content": question}])
    ctx = tools.ToolContext(store, settings, conv.hostname, recall=recall, proposer=f"chat:{model}"[:64],
                            follow=follow)
    limits = Limits(settings.meta.max_tool_calls, settings.meta.max_tokens, settings.meta.time_limit,
                    settings.meta.tool_result_tokens, plan.answer_tokens)
    loop = run_loop(backend, model, messages, ctx, limits, num_ctx=plan.num_ctx,
                    on_token=lambda t: publish(ChatEvent.TOKEN, t),
                    on_tool=lambda o: publish(ChatEvent.TOOL, f"{o.name} {json.dumps(o.arguments)[:200]}"
                                              + (" (refused)" if o.refused else "")))
    content = loop.content
    if loop.stopped != Stopped.ANSWERED:
        publish(ChatEvent.TOKEN, "\n")
        final = backend.chat(model, loop.messages + [{"role": "user", "content":
                             "Answer my question now with what you found, without more tools."}],
                             num_ctx=plan.num_ctx, max_tokens=plan.answer_tokens,
                             on_token=lambda t: publish(ChatEvent.TOKEN, t))
        content = final.content
    with store.session() as s:
        reply = ChatMessage(conversation_id=conv.id, role="assistant", content=truncate(content, 20000) or "",
                            model=loop.model or model, transcript=loop.transcript)
        s.add(reply)
        s.get(ChatMessage, message_id).status = ChatStatus.ANSWERED
        s.get(Conversation, conv.id).updated_at = utcnow()
        s.flush()
        reply_id = reply.id
    publish(ChatEvent.DONE, str(reply_id))
    return ChatAnswer(message_id=message_id, answer_id=reply_id, status=ChatStatus.ANSWERED, content=content,
                      tool_calls=loop.tool_calls)


def redis_publisher(url: str, message_id: int) -> Callable[[str, str], None]:
    """Publishes to the message's stream; a broker hiccup loses streamed tokens, never the stored answer."""
    from macha.broker.client import redis_client

    client = redis_client(url)
    key = stream_key(message_id)

    def publish(kind: str, text: str) -> None:
        try:
            client.xadd(key, {"type": kind, "text": text}, maxlen=100_000, approximate=True)
            if kind in (ChatEvent.DONE, ChatEvent.ERROR):
                client.expire(key, STREAM_TTL_S)
        except Exception as exc:  # noqa: BLE001 - streaming is a courtesy; the answer is stored regardless
            log.warning("chat stream %s: %s", key, exc)

    return publish
