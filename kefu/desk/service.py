"""What the desk does with a conversation; the HTTP handlers only translate.

Modes: bot (Rasa answers), queued (waiting for an agent), agent (a human answers),
callback (outside hours or nobody online: a phone number and a time are taken),
closed. Every message is stored before anything else happens, and every text the
desk itself sends goes through the phrasing guard, like the bot's own.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import uuid
from datetime import timedelta
from typing import Any, Dict, List, Optional, Tuple

from kefu.desk import quality
from kefu.desk.accounts import AgentAccounts
from kefu.desk.assignment import Assigner
from kefu.desk.auth import new_token, token_hash
from kefu.desk.callback import CallbackDialogue
from kefu.desk.config import DeskConfig
from kefu.desk.hub import Hub
from kefu.desk.rasa_client import ActionServerProbe, RasaClient, RasaUnavailable
from kefu.desk.speaker import NotAllowed, Speaker
from kefu.desk.timers import FirstResponseTimer, IdleTimers
from kefu.domain import escalation
from kefu.domain.phrasing.checker import Checker
from kefu.domain.phrasing.context import ReplyContext
from kefu.domain.policy.loader import Policy
from kefu.domain.script import detect_script
from kefu.store import metrics
from kefu.store.conversations import Agent, Conversation, ConversationStore, Message, utcnow
from kefu.store.records import RecordStore

__all__ = ["Desk", "NotAllowed"]
logger = logging.getLogger(__name__)


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
        # The units a message passes through, each with one job.
        self.speaker = Speaker(policy, store, hub, rasa)
        self.accounts = AgentAccounts(config, store)
        self.timers = IdleTimers(policy, store, self.speaker)
        self.first_response = FirstResponseTimer(policy, store, self.speaker)
        self.assigner = Assigner(policy, store, self.speaker)
        self.callback = CallbackDialogue(policy, self.speaker)
        self.checker = Checker.for_policy(policy)

    # --- visitors ------------------------------------------------------------
    async def open(
        self, metadata: Dict[str, Any], channel: str = "web"
    ) -> Tuple[Conversation, str, List[Message]]:
        token = new_token()
        conversation = await self.store.create_conversation(
            uuid.uuid4().hex, token_hash(token), channel=channel
        )
        replies = await self.greet(conversation, metadata)
        return conversation, token, replies

    async def greet(self, conversation: Conversation, metadata: Dict[str, Any]) -> List[Message]:
        """The opening: the bot's greeting (or the hand-over when Rasa is down)."""
        remembered = {k: str(metadata[k])[:64] for k in ("timezone", "script") if metadata.get(k)}
        if remembered:
            conversation.summary.update(remembered)
            await self.store.update(conversation.id, summary=conversation.summary)
        try:
            answers = await self.rasa.trigger(conversation.id, "greet", metadata)
            if conversation.summary.get("script") == "traditional":  # the page's language
                context = ReplyContext(script="traditional")
                answers = [
                    {**a, "text": self.speaker.guard.apply(a.get("text"), context)} for a in answers
                ]
            replies = await self._bot_answers(conversation, answers)
        except RasaUnavailable as e:
            logger.error("Rasa unavailable at the opening: %s", e)
            replies = await self._rasa_down(conversation)
        await self.timers.arm(conversation)
        return replies

    async def authenticate_visitor(
        self, conversation_id: str, token: str
    ) -> Optional[Conversation]:
        conversation = await self.store.get(conversation_id)
        if conversation is None or not token:
            return None
        if not hmac.compare_digest(conversation.token_hash, token_hash(token)):
            return None
        return conversation

    async def visitor_message(
        self, conversation: Conversation, text: str, metadata: Dict[str, Any]
    ) -> List[Message]:
        await self._remember_script(conversation, text)
        await self.speaker.post(conversation, "visitor", text)
        mode = conversation.status
        if mode == "closed":
            return [await self.speaker.say(conversation, "closed_notice")]
        if mode == "bot":
            return await self._bot_turn(conversation, text, metadata)
        if mode == "callback":
            return await self._callback_turn(conversation, text)
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
                replies.append(await self.speaker.say(conversation, "wait_slow"))
                answers = await pending
                if answers:
                    replies.append(await self.speaker.say(conversation, "thanks_wait"))
        except RasaUnavailable as e:
            logger.error("Rasa unavailable for %s: %s", conversation.id, e)
            return replies + await self._rasa_down(conversation)
        replies += await self._bot_answers(conversation, answers)
        if conversation.status == "bot":
            replied = any(m.sender == "bot" for m in replies)
            failure = escalation.assistant_failed(
                self.policy.escalation,
                replied=replied,
                # probed only after a reply (a cached probe): silence already decides
                action_server_up=not replied or self.actions is None or await self.actions.up(),
            )
            if failure is not None:
                logger.error("%s for %s: handing over", failure.note, conversation.id)
                replies += await self._hand_over_failure(conversation, failure)
                await self.speaker.tell_rasa(
                    conversation,
                    [{"event": "slot", "name": "handoff_reason", "value": failure.code}],
                )
        if conversation.status == "bot":
            await self.timers.arm(
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
            replies.append(await self.speaker.post(conversation, "bot", text))
        if handoff is not None:
            replies += await self.hand_over(
                conversation, handoff, phrase_said=queued and handoff_text is not None
            )
        return replies

    async def _rasa_down(self, conversation: Conversation) -> List[Message]:
        failure = escalation.assistant_failed(self.policy.escalation, rasa_up=False)
        assert failure is not None
        return await self._hand_over_failure(conversation, failure)

    async def _hand_over_failure(
        self, conversation: Conversation, failure: escalation.Decision
    ) -> List[Message]:
        signal = {"reason": failure.code, "priority": failure.reason.priority, "note": failure.note}
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
        summary.pop("transfer", None)
        queued = await self._can_queue()
        if not queued:
            summary["callback"] = {"stage": "phone"}
        await self.speaker.set_mode(
            conversation,
            ("bot", "queued", "callback"),
            status="queued" if queued else "callback",
            reason=code,
            priority=reason.priority,
            waiting_since=now,
            summary=summary,
            idle_deadline=None,
            assignment=None,
            # A person's first reply is due from now (a call-back is a phone call instead).
            first_response_due=self.first_response.due(now) if queued else None,
            first_response_s=None,
            sla_breached=0,
        )
        await self.store.add_event(conversation.id, "handoff", reason=code)
        replies: List[Message] = []
        if queued:
            if not phrase_said:
                replies.append(await self.speaker.say(conversation, scene or reason.phrase))
            joined = await self.assigner.offer(conversation)
            if joined is not None:  # a person has the chat already: no queue to speak of
                replies.append(joined)
                return replies
            replies.append(await self._say_queue(conversation, "queue_position"))
            return replies
        if self.policy.phrase(f"{reason.phrase}_callback"):
            replies.append(await self.speaker.say(conversation, f"{reason.phrase}_callback"))
        replies.append(
            await self.speaker.say(
                conversation, self.callback.ask_phone_scene(now), **self.callback.hours()
            )
        )
        return replies

    async def _say_queue(self, conversation: Conversation, scene: str) -> Message:
        """A queue phrase with the place and the wait: 您是下一位 when nobody is ahead."""
        place = await self._queue(conversation)
        if place["ahead"] == 0 and self.policy.phrase(f"{scene}_next"):
            scene = f"{scene}_next"
        return await self.speaker.say(conversation, scene, **place)

    async def _waiting_escalation(
        self, conversation: Conversation, parse: Dict[str, Any]
    ) -> Optional[Message]:
        """A more urgent reason in what a waiting visitor writes: raise the priority
        and say that reason's phrase (asked of kefu.domain.escalation, like the bot does)."""
        turns = [escalation.Turn(**t) for t in conversation.summary.get("waiting_turns", [])]
        turn = escalation.turn_of(parse) if parse else escalation.Turn(None)
        turns = (turns + [turn])[-10:]
        peak = float(conversation.summary.get("tone_peak") or 0)
        if parse.get("text") and turn.tone_score > peak:
            # The sentence that showed the tone most, for the agent's summary.
            conversation.summary["tone_peak"] = turn.tone_score
            conversation.summary["tone_sentence"] = str(parse["text"])[:120]
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
        await self.speaker.set_mode(
            conversation, reason=decision.code, priority=decision.reason.priority, summary=summary
        )
        scene = decision.reason.phrase
        if conversation.status == "callback" and self.policy.phrase(f"{scene}_callback"):
            scene = f"{scene}_callback"
        return await self.speaker.say(conversation, scene)

    async def _parse(self, text: str) -> Dict[str, Any]:
        try:
            return await self.rasa.parse(text)
        except RasaUnavailable:
            return {}

    async def _callback_turn(self, conversation: Conversation, text: str) -> List[Message]:
        """Arranging a call-back: Rasa hears the message; an urgent reason comes first,
        then the dialogue asks its question again; otherwise the dialogue takes the answer."""
        parse = await self._parse(text)
        event: Dict[str, Any] = {"event": "user", "text": text}
        if parse:
            event["parse_data"] = parse
        await self.speaker.tell_rasa(conversation, [event])
        urgent = await self._waiting_escalation(conversation, parse)
        if urgent is not None:
            again = await self.callback.ask_again(conversation)
            return [urgent] + ([again] if again else [])
        return await self.callback.answer(conversation, text)

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
            elif not replies and self.speaker.ack_due(conversation):
                message = await self._say_queue(conversation, "queue_ack")
                replies.append(await self.speaker.acknowledged(conversation, message))
        await self.speaker.tell_rasa(
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

    async def claim(self, conversation: Conversation, agent: str) -> None:
        """An agent takes a queued or call-back conversation by hand (whatever the
        assignment mode): one conditional update, so of two claims exactly one wins."""
        if conversation.status == "agent" and conversation.agent == agent:
            return  # claimed already by this agent: nothing to do twice
        if conversation.status == "agent":
            raise NotAllowed(f"conversation is taken by {conversation.agent}")
        was, now = conversation.status, utcnow()
        try:
            await self.speaker.set_mode(
                conversation,
                ("queued", "callback"),
                status="agent",
                agent=agent,
                assigned_at=now,
                assignment="claim",
            )
        except NotAllowed:
            # Two agents clicked at once: exactly one transition won.
            current = await self.store.get(conversation.id)
            if current is not None and current.status == "agent" and current.agent == agent:
                return
            taken = f"taken by {current.agent}" if current and current.agent else "not waiting"
            raise NotAllowed(f"conversation is {taken}") from None
        waited = (
            (now - conversation.waiting_since).total_seconds()
            if was == "queued" and conversation.waiting_since
            else None
        )
        await self.store.add_event(conversation.id, "claimed", agent=agent, value=waited)
        message = await self.speaker.say(conversation, "agent_joined", sender="agent", agent=agent)
        await self.speaker.tell_rasa(conversation, [{"event": "bot", "text": message.text}])

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
        message = await self.speaker.post(
            conversation, "agent", self.speaker.guard.apply(text, context) or text
        )
        seconds = await self.store.answered(conversation.id, agent, message.created_at)
        if seconds is not None:  # the first reply: the timer stops
            await self.speaker.announce(
                conversation, first_response_due=None, first_response_s=seconds
            )
        await self.speaker.tell_rasa(conversation, [{"event": "bot", "text": message.text}])
        return message

    async def blocked(
        self, conversation: Conversation, agent: str, text: str, verdict: Dict[str, Any]
    ) -> None:
        """A reply the checker refused, kept for the quality review (with what was sent
        instead, which is the agent's next reply)."""
        if conversation.status == "agent" and conversation.agent == agent:
            rules = sorted({v["rule"] for v in verdict["violations"]})
            reasons = list(dict.fromkeys(v["reason"] for v in verdict["violations"]))
            await self.store.add_event(
                conversation.id,
                "blocked",
                agent=agent,
                data={"text": text, "rules": rules, "reasons": reasons},
            )

    async def transfer(
        self, conversation: Conversation, by: Agent, to: str, note: Optional[str]
    ) -> None:
        await self.assigner.transfer(conversation, by, to, note)

    async def set_status(self, username: str, status: str) -> None:
        await self.accounts.set_status(username, status)
        if status == "online":
            await self.assigner.fill()  # the queue need not wait for the next tick

    async def tick(self) -> int:
        """Everything on a clock: idle visitors, first-response breaches, assignment."""
        return (
            await self.timers.tick() + await self.first_response.tick() + await self.assigner.tick()
        )

    # --- the supervisor --------------------------------------------------------
    def online_since(self) -> Any:
        return self.assigner.online_since()

    async def metrics(self, since: Any) -> Dict[str, Any]:
        return await metrics.metrics(self.store, since, self.online_since())

    async def distributions(self, since: Any) -> Dict[str, Any]:
        return await metrics.distributions(self.store, since)

    async def quality(self, since: Any, limit: int = 100) -> List[Dict[str, Any]]:
        """Each closed conversation a person handled since `since`, scored (newest first)."""
        reviewed = []
        for conversation in await self.store.handled_and_closed(since, limit):
            surveys = await self.records.find(kind="survey", conversation_id=conversation.id)
            ratings = [
                int(r.data["score"])
                for r in surveys
                if isinstance(r.data.get("score"), int) and 1 <= r.data["score"] <= 5
            ]
            reviewed.append(
                quality.score(
                    conversation,
                    await self.store.messages(conversation.id),
                    await self.store.events(conversation.id),
                    ratings,
                    self.policy.escalation.first_response_s,
                    self.policy.escalation.tone.decay,
                )
            )
        return reviewed

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
        await self.speaker.set_mode(
            conversation,
            ("agent", "queued", "callback"),
            status="bot",
            agent=None,
            waiting_since=None,
            summary=conversation.summary,
            assignment=None,
            first_response_due=None,
        )
        message = await self.speaker.say(conversation, "resume")
        # Clearing the reason tells Rasa's escalation policy to count afresh.
        await self.speaker.tell_rasa(
            conversation,
            [
                {"event": "slot", "name": "handoff_reason", "value": None},
                {"event": "slot", "name": "agent_promise", "value": promise},
                {"event": "bot", "text": message.text},
            ],
        )
        await self.timers.arm(conversation)
        await self.assigner.fill()  # a place is free

    def _joined_text(self, conversation: Conversation) -> str:
        return self.speaker.render(conversation, "agent_joined", agent=conversation.agent or "")

    async def close(self, conversation: Conversation) -> None:
        if conversation.status == "closed":
            raise NotAllowed("conversation is closed already")
        await self.speaker.say(
            conversation, "agent_close", sender="agent" if conversation.agent else "bot"
        )
        await self.speaker.say(conversation, "ask_satisfaction")
        open_states = ("bot", "queued", "agent", "callback")
        await self.speaker.set_mode(
            conversation,
            open_states,
            status="closed",
            idle_deadline=None,
            first_response_due=None,
        )
        await self.assigner.fill()  # a place is free
