"""What the desk does with a conversation; the HTTP handlers only translate.

Modes: bot (Rasa answers), queued (waiting for an agent), agent (a human answers),
callback (outside hours or nobody online: a phone number and a time are taken),
closed. Every message is stored before anything else happens, and every text the
desk itself sends goes through the phrasing guard, like the bot's own.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from datetime import datetime, timedelta
from typing import Any, Dict, List, Optional, Tuple

from kefu.desk.auth import hash_password, new_token, token_hash, verify_password
from kefu.desk.config import DeskConfig
from kefu.desk.hub import Hub
from kefu.desk.rasa_client import ActionServerProbe, RasaClient, RasaUnavailable
from kefu.domain import escalation
from kefu.domain.phrasing.checker import Checker
from kefu.domain.phrasing.context import ReplyContext
from kefu.domain.phrasing.guard import Guard
from kefu.domain.policy.loader import Policy
from kefu.domain.script import detect_script
from kefu.store.conversations import Conversation, ConversationStore, Message, utcnow
from kefu.store.records import RecordStore

logger = logging.getLogger(__name__)
PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")


class NotAllowed(Exception):
    """An agent action that does not fit the conversation's state."""


def mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "***"


def spoken_minutes(minutes: float) -> str:
    return f"{max(1, round(minutes))}分钟"


class Desk:
    def __init__(
        self,
        config: DeskConfig,
        policy: Policy,
        store: ConversationStore,
        records: RecordStore,
        rasa: RasaClient,
        hub: Hub,
        actions: Optional[ActionServerProbe] = None,
    ) -> None:
        self.config, self.policy, self.store = config, policy, store
        self.records, self.rasa, self.hub = records, rasa, hub
        self.actions = actions
        self.guard = Guard(policy)
        self.checker = Checker.for_policy(policy)

    # --- saying things -----------------------------------------------------
    def render(self, conversation: Conversation, scene: str, **values: Any) -> str:
        phrase = self.policy.phrase(scene)
        if phrase is None:  # the loader guarantees the desk's scenes; be safe anyway
            phrase = self.policy.phrases["safe_fallback"]
        context = ReplyContext(
            script=conversation.summary.get("script", "unknown"),
            timezone=conversation.summary.get("timezone"),
        )
        variables = {**self.guard.variables(context), **{k: str(v) for k, v in values.items()}}
        try:
            text = phrase.text.format(**variables)
        except (KeyError, IndexError):
            logger.warning("phrase %s is missing a value", scene)
            text = self.policy.phrases["safe_fallback"].text
        return self.guard.apply(text, context) or ""

    async def post(self, conversation: Conversation, sender: str, text: str) -> Message:
        """Store a message, then send it live to the pages that watch the conversation."""
        message = await self.store.add_message(conversation.id, sender, text)
        await self.hub.publish(conversation.id, {"type": "message", **message.as_dict()})
        return message

    async def say(
        self, conversation: Conversation, scene: str, sender: str = "bot", **values: Any
    ) -> Message:
        return await self.post(conversation, sender, self.render(conversation, scene, **values))

    async def set_mode(self, conversation: Conversation, **values: Any) -> None:
        await self.store.update(conversation.id, **values)
        for key, value in values.items():
            setattr(conversation, key, value)
        await self.hub.publish(
            conversation.id,
            {
                "type": "mode",
                "mode": conversation.status,
                "reason": conversation.reason,
                "priority": conversation.priority,
            },
        )

    async def _tell_rasa(self, conversation: Conversation, events: List[Dict[str, Any]]) -> None:
        """Keep Rasa's tracker complete while a human has the conversation."""
        try:
            await self.rasa.append(conversation.id, events)
        except RasaUnavailable as e:
            logger.warning("tracker of %s not updated: %s", conversation.id, e)

    # --- visitors ------------------------------------------------------------
    async def open(self, metadata: Dict[str, Any]) -> Tuple[Conversation, str, List[Message]]:
        token = new_token()
        conversation = await self.store.create_conversation(uuid.uuid4().hex, token_hash(token))
        if metadata.get("timezone"):
            conversation.summary["timezone"] = str(metadata["timezone"])[:64]
            await self.store.update(conversation.id, summary=conversation.summary)
        try:
            answers = await self.rasa.trigger(conversation.id, "greet", metadata)
            replies = await self._bot_answers(conversation, answers)
        except RasaUnavailable as e:
            logger.error("Rasa unavailable at the opening: %s", e)
            replies = await self._rasa_down(conversation)
        await self._arm_idle(conversation)
        return conversation, token, replies

    async def authenticate_visitor(
        self, conversation_id: str, token: str
    ) -> Optional[Conversation]:
        conversation = await self.store.get(conversation_id)
        if conversation is None or not token:
            return None
        import hmac

        if not hmac.compare_digest(conversation.token_hash, token_hash(token)):
            return None
        return conversation

    async def visitor_message(
        self, conversation: Conversation, text: str, metadata: Dict[str, Any]
    ) -> List[Message]:
        await self._remember_script(conversation, text)
        await self.post(conversation, "visitor", text)
        mode = conversation.status
        if mode == "closed":
            return [await self.say(conversation, "closed_notice")]
        if mode == "bot":
            return await self._bot_turn(conversation, text, metadata)
        if mode == "callback":
            return await self._callback_step(conversation, text)
        return await self._while_human(conversation, text)

    async def _bot_turn(
        self, conversation: Conversation, text: str, metadata: Dict[str, Any]
    ) -> List[Message]:
        """Rasa answers; a wait is announced only when that really takes a while."""
        await self.hub.publish(conversation.id, {"type": "typing"})
        replies: List[Message] = []
        pending = asyncio.ensure_future(self.rasa.send(conversation.id, text, metadata))
        try:
            try:
                answers = await asyncio.wait_for(
                    asyncio.shield(pending), self.policy.service.announce_wait_after_s
                )
            except asyncio.TimeoutError:
                replies.append(await self.say(conversation, "wait_slow"))
                answers = await pending
                if answers:
                    replies.append(await self.say(conversation, "thanks_wait"))
        except RasaUnavailable as e:
            logger.error("Rasa unavailable for %s: %s", conversation.id, e)
            return replies + await self._rasa_down(conversation)
        replies += await self._bot_answers(conversation, answers)
        if conversation.status == "bot":
            problem = None
            if not any(m.sender == "bot" for m in replies):
                problem = "no reply from the assistant"  # never silence
            elif self.actions is not None and not await self.actions.up():
                problem = "action server down"  # its forms and lookups cannot work
            if problem:
                logger.error("%s for %s: handing over", problem, conversation.id)
                replies += await self._rasa_down(conversation, note=problem)
                await self._tell_rasa(
                    conversation,
                    [{"event": "slot", "name": "handoff_reason", "value": "bot_failure"}],
                )
        if conversation.status == "bot":
            await self._arm_idle(
                conversation, held=self._held(answers), closing=self._closing(answers)
            )
        return replies

    async def _remember_script(self, conversation: Conversation, text: str) -> None:
        script = detect_script(text)
        if script in ("simplified", "traditional") and conversation.summary.get("script") != script:
            conversation.summary["script"] = script
            await self.store.update(conversation.id, summary=conversation.summary)

    @staticmethod
    def _signal(answer: Dict[str, Any]) -> Dict[str, Any]:
        return dict((answer.get("custom") or {}).get("kefu") or {})

    def _held(self, answers: List[Dict[str, Any]]) -> bool:
        return any(self._signal(a).get("event") == "hold_on" for a in answers)

    def _closing(self, answers: List[Dict[str, Any]]) -> bool:
        """The bot thanked the visitor or said goodbye: no idle prompt after that."""
        return any(self._signal(a).get("event") == "closing" for a in answers)

    async def _bot_answers(
        self, conversation: Conversation, answers: List[Dict[str, Any]]
    ) -> List[Message]:
        handoff: Optional[Dict[str, Any]] = None
        texts: List[str] = []
        handoff_text: Optional[int] = None  # the bot's hand-over phrase, right before it
        for answer in answers:
            signal = self._signal(answer)
            if signal.get("event") == "handoff":
                handoff = signal
                handoff_text = len(texts) - 1 if texts else None
            if answer.get("text"):
                texts.append(str(answer["text"]))
        queued = await self._can_queue() if handoff is not None else True
        replies: List[Message] = []
        for i, text in enumerate(texts):
            if i == handoff_text and not queued:
                continue  # "transferring you now" is not true: hand_over says what is
            replies.append(await self.post(conversation, "bot", text))
        if handoff is not None:
            replies += await self.hand_over(
                conversation, handoff, phrase_said=queued and handoff_text is not None
            )
        return replies

    async def _rasa_down(
        self, conversation: Conversation, note: str = "Rasa unavailable"
    ) -> List[Message]:
        decision = escalation.bot_failed(self.policy.escalation)
        signal = {"reason": decision.code, "priority": decision.reason.priority, "note": note}
        return await self.hand_over(
            conversation, signal, phrase_said=False, scene="rasa_unavailable"
        )

    async def _can_queue(self) -> bool:
        """An agent can take the conversation now: within hours and someone online."""
        escalation_policy = self.policy.escalation
        now = utcnow()
        if not escalation_policy.hours.covers(now):
            return False
        online = await self.store.agents_seen_since(
            now - timedelta(seconds=escalation_policy.agent_online_seconds)
        )
        return online > 0

    async def hand_over(
        self,
        conversation: Conversation,
        signal: Dict[str, Any],
        phrase_said: bool = True,
        scene: Optional[str] = None,
    ) -> List[Message]:
        """Queue for an agent, or take a call-back request when nobody can answer now.

        `phrase_said`: the bot already said the reason's hand-over phrase. Otherwise
        the desk says it (`scene` for the queued case, when given), or, for a
        call-back, the reason's `_callback` phrase: no "transferring you now" when
        nobody can be transferred to.
        """
        reasons = self.policy.escalation.reasons
        code = str(signal.get("reason") or "")
        if code not in reasons:
            code = "customer_request"
        reason = reasons[code]
        now = utcnow()
        summary = {**conversation.summary, **{k: v for k, v in signal.items() if k != "event"}}
        queued = await self._can_queue()
        if not queued:
            summary["callback"] = {"stage": "phone"}
        await self.set_mode(
            conversation,
            status="queued" if queued else "callback",
            reason=code,
            priority=reason.priority,
            waiting_since=now,
            summary=summary,
            idle_deadline=None,
        )
        replies: List[Message] = []
        if queued:
            if not phrase_said:
                replies.append(await self.say(conversation, scene or reason.phrase))
            replies.append(await self._say_queue(conversation, "queue_position"))
            return replies
        if self.policy.phrase(f"{reason.phrase}_callback"):
            replies.append(await self.say(conversation, f"{reason.phrase}_callback"))
        replies.append(
            await self.say(conversation, "callback_ask_phone", reason_text=self._why_callback(now))
        )
        return replies

    def _why_callback(self, now: datetime) -> str:
        hours = self.policy.escalation.hours
        if hours.covers(now):
            return "人工客服暂时都在忙"
        return f"现在是人工客服的休息时间（服务时间{hours.open:%H:%M}-{hours.close:%H:%M}）"

    async def _say_queue(self, conversation: Conversation, scene: str) -> Message:
        """A queue phrase with the place and the wait: 您是下一位 when nobody is ahead."""
        place = await self._queue(conversation)
        if place["ahead"] == 0 and self.policy.phrase(f"{scene}_next"):
            scene = f"{scene}_next"
        return await self.say(conversation, scene, **place)

    async def _waiting_escalation(
        self, conversation: Conversation, parse: Dict[str, Any]
    ) -> Optional[Message]:
        """A more urgent reason in what a waiting visitor writes: raise the priority
        and say that reason's phrase (asked of kefu.domain.escalation, like the bot does)."""
        turns = [escalation.Turn(**t) for t in conversation.summary.get("waiting_turns", [])]
        turn = escalation.turn_of(parse) if parse else escalation.Turn(None)
        turns = (turns + [turn])[-10:]
        conversation.summary["waiting_turns"] = [
            {
                "intent": t.intent,
                "tone_score": t.tone_score,
                "labels": list(t.labels),
                "risks": list(t.risks),
            }
            for t in turns
        ]
        decision = escalation.while_waiting(
            conversation.reason or "customer_request", turns, self.policy.escalation
        )
        if decision is None:
            await self.store.update(conversation.id, summary=conversation.summary)
            return None
        summary = conversation.summary
        summary["reason_upgraded_from"] = conversation.reason
        evidence = (parse.get("risk") or {}).get("evidence") or []
        summary["evidence"] = (summary.get("evidence") or []) + [
            {k: e.get(k) for k in ("reason", "sentence", "match", "how")} for e in evidence
        ]
        await self.set_mode(
            conversation, reason=decision.code, priority=decision.reason.priority, summary=summary
        )
        scene = decision.reason.phrase
        if conversation.status == "callback" and self.policy.phrase(f"{scene}_callback"):
            scene = f"{scene}_callback"
        return await self.say(conversation, scene)

    async def _parse(self, text: str) -> Dict[str, Any]:
        try:
            return await self.rasa.parse(text)
        except RasaUnavailable:
            return {}

    def _ack_due(self, conversation: Conversation) -> bool:
        """At most one acknowledgement every `waiting.ack_every_s` seconds."""
        last = conversation.summary.get("last_ack_at")
        if not last:
            return True
        elapsed = (utcnow() - datetime.fromisoformat(last)).total_seconds()
        return elapsed >= self.policy.service.ack_every_s

    async def _acknowledged(self, conversation: Conversation, message: Message) -> Message:
        conversation.summary["last_ack_at"] = utcnow().isoformat()
        await self.store.update(conversation.id, summary=conversation.summary)
        return message

    async def _callback_step(self, conversation: Conversation, text: str) -> List[Message]:
        parse = await self._parse(text)
        event: Dict[str, Any] = {"event": "user", "text": text}
        if parse:
            event["parse_data"] = parse
        await self._tell_rasa(conversation, [event])
        callback = dict(conversation.summary.get("callback") or {"stage": "phone"})
        urgent = await self._waiting_escalation(conversation, parse)
        if urgent is not None:
            # Not an answer to the question: the urgent reason first, then the question again.
            again = {"phone": "callback_ask_phone", "time": "callback_ask_time"}.get(
                callback.get("stage", ""), ""
            )
            replies = [urgent]
            if again:
                replies.append(
                    await self.say(conversation, again, reason_text=self._why_callback(utcnow()))
                )
            return replies
        if callback.get("stage") == "phone":
            match = PHONE.search(text.replace(" ", "").replace("-", ""))
            if not match:
                return [await self.say(conversation, "callback_phone_invalid")]
            callback.update(stage="time", phone=match.group(0))
            reply = await self.say(conversation, "callback_ask_time")
        elif callback.get("stage") == "time":
            callback.update(stage="booked", when=text.strip()[:60])
            reply = await self.say(conversation, "callback_booked", **self._booked(callback))
        else:
            # Booked: an agent reads it with the conversation; the visitor hears it arrived.
            if not self._ack_due(conversation):
                return []
            message = await self.say(conversation, "callback_ack", **self._booked(callback))
            return [await self._acknowledged(conversation, message)]
        conversation.summary["callback"] = callback
        await self.set_mode(conversation, summary=conversation.summary)
        return [reply]

    def _booked(self, callback: Dict[str, Any]) -> Dict[str, str]:
        hours = self.policy.escalation.hours
        return {
            "phone": mask_phone(str(callback.get("phone") or "")),
            "when": str(callback.get("when") or ""),
            "promise": f"工作时间（{hours.open:%H:%M}-{hours.close:%H:%M}）",
        }

    async def _while_human(self, conversation: Conversation, text: str) -> List[Message]:
        """Queued or with an agent: the bot is silent, but Rasa still hears everything,
        and a queued visitor always hears that the message arrived (with the place)."""
        event: Dict[str, Any] = {"event": "user", "text": text}
        parse = await self._parse(text)
        if parse:
            event["parse_data"] = parse
        intent = (parse.get("intent") or {}).get("name")
        replies: List[Message] = []
        urgent = await self._waiting_escalation(conversation, parse)
        if urgent is not None:
            replies.append(urgent)
        if conversation.status == "queued":
            if intent == "urge":
                replies.append(await self._say_queue(conversation, "queue_urge"))
            elif not replies and self._ack_due(conversation):
                message = await self._say_queue(conversation, "queue_ack")
                replies.append(await self._acknowledged(conversation, message))
        await self._tell_rasa(
            conversation, [event] + [{"event": "bot", "text": m.text} for m in replies]
        )
        return replies

    async def queue_info(self, conversation: Conversation) -> Optional[Dict[str, Any]]:
        """Place in the queue and the estimated wait, while queued."""
        return await self._queue(conversation) if conversation.status == "queued" else None

    async def _queue(self, conversation: Conversation) -> Dict[str, Any]:
        ahead = await self.store.queue_ahead(conversation)
        minutes = (ahead + 1) * self.policy.escalation.minutes_per_conversation
        return {"ahead": ahead, "wait": spoken_minutes(minutes)}

    async def satisfaction(self, conversation: Conversation, score: int) -> None:
        await self.records.add("survey", conversation.id, {"score": score, "via": "desk"})

    # --- idle visitors ---------------------------------------------------------
    async def _arm_idle(
        self, conversation: Conversation, held: bool = False, closing: bool = False
    ) -> None:
        """Start the idle timer. After the bot's thanks or goodbye nobody is asked
        "还在线吗": the timer then only closes the chat, quietly."""
        service = self.policy.service
        wait = service.idle_after_s * (service.hold_on_factor if held else 1)
        prompts = service.idle_prompts if closing else 0
        if bool(conversation.summary.get("closing")) != closing:
            conversation.summary["closing"] = closing
            await self.store.update(conversation.id, summary=conversation.summary)
        await self.store.update(
            conversation.id,
            idle_deadline=utcnow() + timedelta(seconds=wait),
            idle_prompts=prompts,
        )
        conversation.idle_prompts = prompts

    IDLE_PROMPTS = ("idle_prompt", "idle_prompt_again")  # never the same words twice

    async def tick(self) -> int:
        """Prompt idle visitors, close the ones who stay silent; purge old transcripts.

        Timers are rows in the store, so a restart of any process loses none, and
        `claim_idle` makes sure only one replica acts on each.
        """
        service = self.policy.service
        now = utcnow()
        acted = 0
        for conversation in await self.store.idle_due(now):
            if conversation.idle_prompts < service.idle_prompts:
                if await self.store.claim_idle(
                    conversation, now + timedelta(seconds=service.idle_after_s)
                ):
                    scene = self.IDLE_PROMPTS[min(conversation.idle_prompts, 1)]
                    await self.say(conversation, scene)
                    acted += 1
            elif await self.store.claim_idle(conversation, None):
                if not conversation.summary.get("closing"):
                    await self.say(conversation, "idle_close")
                await self.set_mode(conversation, status="closed")
                acted += 1
        await self.store.purge_closed_before(now - timedelta(days=service.retention_days))
        return acted

    # --- agents ----------------------------------------------------------------
    async def ensure_agents(self) -> None:
        for username, password in self.config.agents:
            agent = await self.store.agent(username)
            if agent is None or not await _verify(password, agent.password_hash):
                hashed = await asyncio.to_thread(hash_password, password)
                await self.store.upsert_agent(username, hashed, username)

    async def login(self, username: str, password: str) -> Optional[Tuple[str, datetime]]:
        agent = await self.store.agent(username)
        if agent is None or not await _verify(password, agent.password_hash):
            return None
        token = new_token()
        expires = utcnow() + timedelta(seconds=self.config.agent_token_ttl_s)
        await self.store.add_session(token_hash(token), username, expires)
        await self.store.touch_agent(username)
        return token, expires

    async def agent_for(self, token: str) -> Optional[str]:
        if not token:
            return None
        username = await self.store.session_user(token_hash(token))
        if username:
            await self.store.touch_agent(username)
        return username

    async def claim(self, conversation: Conversation, agent: str) -> None:
        if conversation.status not in ("queued", "callback", "agent"):
            raise NotAllowed(f"conversation is {conversation.status}")
        if conversation.status == "agent" and conversation.agent not in (None, agent):
            raise NotAllowed(f"conversation is taken by {conversation.agent}")
        await self.set_mode(conversation, status="agent", agent=agent)
        message = await self.say(conversation, "agent_joined", sender="agent", agent=agent)
        await self._tell_rasa(conversation, [{"event": "bot", "text": message.text}])

    def check_agent_text(self, text: str) -> Dict[str, Any]:
        """The checker's verdict: every violation with its span, and a one-click
        rewrite that passes the checker itself (`Checker.suggest`)."""
        violations = self.checker.check(text)
        suggestion = self.checker.suggest(text) if violations else None
        return {
            "ok": not violations,
            "violations": [v.as_dict() for v in violations],
            "suggestion": suggestion,
        }

    async def agent_reply(self, conversation: Conversation, agent: str, text: str) -> Message:
        if conversation.status != "agent" or conversation.agent != agent:
            raise NotAllowed("claim the conversation before replying")
        context = ReplyContext(script=conversation.summary.get("script", "unknown"))
        message = await self.post(conversation, "agent", self.guard.apply(text, context) or text)
        await self._tell_rasa(conversation, [{"event": "bot", "text": message.text}])
        return message

    async def release(self, conversation: Conversation, agent: str) -> None:
        if conversation.status not in ("agent", "queued", "callback"):
            raise NotAllowed(f"conversation is {conversation.status}")
        # What the agent last told the visitor: the bot repeats that promise when chased.
        said = [m for m in await self.store.messages(conversation.id) if m.sender == "agent"]
        promise = (
            said[-1].text if said and said[-1].text != self._joined_text(conversation) else None
        )
        conversation.summary.pop("waiting_turns", None)
        conversation.summary.pop("last_ack_at", None)
        await self.set_mode(
            conversation, status="bot", agent=None, waiting_since=None, summary=conversation.summary
        )
        message = await self.say(conversation, "resume")
        # Clearing the reason tells Rasa's escalation policy to count afresh.
        await self._tell_rasa(
            conversation,
            [
                {"event": "slot", "name": "handoff_reason", "value": None},
                {"event": "slot", "name": "agent_promise", "value": promise},
                {"event": "bot", "text": message.text},
            ],
        )
        await self._arm_idle(conversation)

    def _joined_text(self, conversation: Conversation) -> str:
        return self.render(conversation, "agent_joined", agent=conversation.agent or "")

    async def close(self, conversation: Conversation) -> None:
        if conversation.status == "closed":
            raise NotAllowed("conversation is closed already")
        await self.say(conversation, "agent_close", sender="agent" if conversation.agent else "bot")
        await self.say(conversation, "ask_satisfaction")
        await self.set_mode(conversation, status="closed", idle_deadline=None)


async def _verify(password: str, stored: str) -> bool:
    """scrypt takes tens of milliseconds of CPU: off the event loop."""
    return await asyncio.to_thread(verify_password, password, stored)
