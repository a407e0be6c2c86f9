"""Timers: idle visitors (a prompt, a second one in other words, then a quiet close), and
the first-response timer of a conversation waiting for a person.

Timers are rows in the store, so a restart of any process loses none, and
`claim_idle` makes sure only one replica acts on each. The tick also purges old
transcripts (the retention in policy/service.yml).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from kefu.desk.speaker import Speaker
from kefu.domain.policy.loader import Policy
from kefu.store.conversations import Conversation, ConversationStore, utcnow


class IdleTimers:
    def __init__(self, policy: Policy, store: ConversationStore, speaker: Speaker) -> None:
        self.policy, self.store, self.speaker = policy, store, speaker

    async def arm(
        self, conversation: Conversation, held: bool = False, closing: bool = False
    ) -> None:
        """Start the idle timer. After the bot's thanks or goodbye nobody is asked
        "还在线吗": the timer then only closes the chat, quietly; the same on the
        channels of `idle.quiet_channels` (WeChat, WeCom)."""
        service = self.policy.service
        wait = service.idle_after_s * (service.hold_on_factor if held else 1)
        closing = closing or conversation.channel in service.idle_quiet_channels
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
                    await self.speaker.say(conversation, scene)
                    acted += 1
            elif await self.store.claim_idle(conversation, None):
                if not conversation.summary.get("closing"):
                    await self.speaker.say(conversation, "idle_close")
                await self.speaker.set_mode(conversation, ("bot",), status="closed")
                acted += 1
        await self.store.purge_closed_before(now - timedelta(days=service.retention_days))
        return acted


class FirstResponseTimer:
    """A person's first reply is due `sla.first_response_s` after the hand-over (the
    conversation's `first_response_due`, in the store). On a breach the visitor hears one
    holding phrase and the breach is counted (`sla_breach` events); `mark_breached` makes
    sure only one replica acts on each."""

    def __init__(self, policy: Policy, store: ConversationStore, speaker: Speaker) -> None:
        self.policy, self.store, self.speaker = policy, store, speaker

    def due(self, handed_at: datetime) -> datetime:
        return handed_at + timedelta(seconds=self.policy.escalation.first_response_s)

    async def tick(self) -> int:
        now = utcnow()
        acted = 0
        for conversation in await self.store.first_response_overdue(now):
            if not await self.store.mark_breached(conversation.id):
                continue
            waited = (
                (now - conversation.waiting_since).total_seconds()
                if conversation.waiting_since
                else None
            )
            await self.store.add_event(
                conversation.id, "sla_breach", agent=conversation.agent, value=waited
            )
            message = await self.speaker.say(conversation, "first_response_hold")
            await self.speaker.tell_rasa(conversation, [{"event": "bot", "text": message.text}])
            acted += 1
        return acted
