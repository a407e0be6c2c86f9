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
from kefu.phrasing.checker import Checker
from kefu.phrasing.context import ReplyContext
from kefu.phrasing.guard import Guard
from kefu.policy.loader import Policy
from kefu.script import detect_script
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
        self.checker = Checker(policy.rules)

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
            try:
                answers = await self.rasa.send(conversation.id, text, metadata)
            except RasaUnavailable as e:
                logger.error("Rasa unavailable for %s: %s", conversation.id, e)
                return await self._rasa_down(conversation)
            replies = await self._bot_answers(conversation, answers)
            if conversation.status == "bot":
                problem = None
                if not replies:
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
                await self._arm_idle(conversation, held=self._held(answers))
            return replies
        if mode == "callback":
            return await self._callback_step(conversation, text)
        return await self._while_human(conversation, text)

    async def _remember_script(self, conversation: Conversation, text: str) -> None:
        script = detect_script(text)
        if script in ("simplified", "traditional") and conversation.summary.get("script") != script:
            conversation.summary["script"] = script
            await self.store.update(conversation.id, summary=conversation.summary)

    @staticmethod
    def _held(answers: List[Dict[str, Any]]) -> bool:
        return any(
            ((a.get("custom") or {}).get("kefu") or {}).get("event") == "hold_on" for a in answers
        )

    async def _bot_answers(
        self, conversation: Conversation, answers: List[Dict[str, Any]]
    ) -> List[Message]:
        replies: List[Message] = []
        handoff: Optional[Dict[str, Any]] = None
        for answer in answers:
            signal = (answer.get("custom") or {}).get("kefu") or {}
            if signal.get("event") == "handoff":
                handoff = signal
            if answer.get("text"):
                replies.append(await self.post(conversation, "bot", str(answer["text"])))
        if handoff is not None:
            replies += await self.hand_over(conversation, handoff)
        return replies

    async def _rasa_down(
        self, conversation: Conversation, note: str = "Rasa unavailable"
    ) -> List[Message]:
        reason = self.policy.escalation.reasons["bot_failure"]
        summary = {"reason": reason.code, "priority": reason.priority, "note": note}
        first = await self.say(conversation, "rasa_unavailable")
        return [first] + await self.hand_over(conversation, summary)

    async def hand_over(self, conversation: Conversation, signal: Dict[str, Any]) -> List[Message]:
        """Queue for an agent, or take a call-back request when nobody can answer now."""
        escalation = self.policy.escalation
        code = str(signal.get("reason") or "")
        if code not in escalation.reasons:
            code = "customer_request"
        reason = escalation.reasons[code]
        now = utcnow()
        summary = {**conversation.summary, **{k: v for k, v in signal.items() if k != "event"}}
        online = await self.store.agents_seen_since(
            now - timedelta(seconds=escalation.agent_online_seconds)
        )
        open_now = escalation.hours.covers(now)
        queued = open_now and online > 0
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
        if queued:
            return [
                await self.say(conversation, "queue_position", **await self._queue(conversation))
            ]
        why = "人工客服暂时都在忙" if open_now else "现在是人工客服的休息时间"
        return [await self.say(conversation, "callback_ask_phone", reason_text=why)]

    async def _callback_step(self, conversation: Conversation, text: str) -> List[Message]:
        await self._tell_rasa(conversation, [{"event": "user", "text": text}])
        callback = dict(conversation.summary.get("callback") or {"stage": "phone"})
        if callback.get("stage") == "phone":
            match = PHONE.search(text.replace(" ", "").replace("-", ""))
            if not match:
                return [await self.say(conversation, "callback_phone_invalid")]
            callback.update(stage="time", phone=match.group(0))
            reply = await self.say(conversation, "callback_ask_time")
        elif callback.get("stage") == "time":
            callback.update(stage="booked", when=text.strip()[:60])
            hours = self.policy.escalation.hours
            reply = await self.say(
                conversation,
                "callback_booked",
                phone=mask_phone(callback["phone"]),
                when=callback["when"],
                promise=f"工作时间（{hours.open:%H:%M}-{hours.close:%H:%M}）",
            )
        else:
            return []  # booked: an agent reads it with the conversation
        conversation.summary["callback"] = callback
        await self.set_mode(conversation, summary=conversation.summary)
        return [reply]

    async def _while_human(self, conversation: Conversation, text: str) -> List[Message]:
        """Queued or with an agent: the bot is silent, but Rasa still hears everything."""
        event: Dict[str, Any] = {"event": "user", "text": text}
        replies: List[Message] = []
        try:
            parse = await self.rasa.parse(text)
            event["parse_data"] = parse
        except RasaUnavailable:
            parse = {}
        intent = (parse.get("intent") or {}).get("name")
        reasons = self.policy.escalation.reasons
        if intent == "report_safety" and conversation.priority < reasons["safety"].priority:
            conversation.summary["reason_upgraded_from"] = conversation.reason
            await self.set_mode(
                conversation,
                reason="safety",
                priority=reasons["safety"].priority,
                summary=conversation.summary,
            )
        if conversation.status == "queued" and intent == "urge":
            replies.append(
                await self.say(conversation, "queue_urge", **await self._queue(conversation))
            )
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
    async def _arm_idle(self, conversation: Conversation, held: bool = False) -> None:
        service = self.policy.service
        wait = service.idle_after_s * (service.hold_on_factor if held else 1)
        await self.store.update(
            conversation.id, idle_deadline=utcnow() + timedelta(seconds=wait), idle_prompts=0
        )
        conversation.idle_prompts = 0

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
                    await self.say(conversation, "idle_prompt")
                    acted += 1
            elif await self.store.claim_idle(conversation, None):
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
        """The checker's verdict, with a one-click rewrite when there is one that passes:
        the text with the rules' literal fixes, else the standard phrase a rule suggests."""
        violations = self.checker.check(text)
        suggestion = None
        if violations:
            fixed = self.checker.fix(text)
            remaining = self.checker.check(fixed)
            if not remaining:
                suggestion = fixed
            else:
                suggestion = next(
                    (v.rewrite for v in remaining if not self.checker.check(v.rewrite)), None
                )
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
        await self.set_mode(conversation, status="bot", agent=None, waiting_since=None)
        message = await self.say(conversation, "resume")
        # Clearing the reason tells Rasa's escalation policy to count afresh.
        await self._tell_rasa(
            conversation,
            [
                {"event": "slot", "name": "handoff_reason", "value": None},
                {"event": "bot", "text": message.text},
            ],
        )
        await self._arm_idle(conversation)

    async def close(self, conversation: Conversation) -> None:
        if conversation.status == "closed":
            raise NotAllowed("conversation is closed already")
        await self.say(conversation, "agent_close", sender="agent" if conversation.agent else "bot")
        await self.say(conversation, "ask_satisfaction")
        await self.set_mode(conversation, status="closed", idle_deadline=None)


async def _verify(password: str, stored: str) -> bool:
    """scrypt takes tens of milliseconds of CPU: off the event loop."""
    return await asyncio.to_thread(verify_password, password, stored)
