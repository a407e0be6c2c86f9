"""Who takes a conversation: automatic assignment, reassignment, transfer.

With `assignment: auto` (policy/escalation.yml) a conversation entering the queue goes to
the online agent with free capacity and the fewest active chats (of equals, the one idle
longest); queued conversations are served by priority, then waiting time. Nobody online
and free: it waits in the queue, and goes out as soon as an agent comes online or frees a
place. An assigned conversation nobody answered within `reassign_after_s` goes to the next
agent. Every change is `ConversationStore.assign`: one transaction that checks the agent
(online, below capacity) and changes the conversation conditionally, so two desks never
give one conversation twice nor fill an agent's last place twice.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Dict, Optional, Sequence

from kefu.desk.speaker import NotAllowed, Speaker
from kefu.domain.policy.loader import Policy
from kefu.store.conversations import Agent, Conversation, ConversationStore, Message, utcnow


class Assigner:
    def __init__(self, policy: Policy, store: ConversationStore, speaker: Speaker) -> None:
        self.policy, self.store, self.speaker = policy, store, speaker

    @property
    def auto(self) -> bool:
        return self.policy.escalation.assignment == "auto"

    def online_since(self):  # type: ignore[no-untyped-def]
        return utcnow() - timedelta(seconds=self.policy.escalation.agent_online_seconds)

    async def offer(self, conversation: Conversation) -> Optional[Message]:
        """A queued conversation to the best free agent now: the phrase the visitor heard,
        or None when it stays in the queue."""
        if not self.auto or conversation.status != "queued":
            return None
        tried: list = []
        while True:
            agent = await self.store.next_agent(self.online_since(), exclude=tried)
            if agent is None:
                return None
            said = await self._give(conversation, agent, ("queued",), "assigned", "agent_joined")
            if said is not None or conversation.status != "queued":
                return said
            tried.append(agent)  # filled up or went away meanwhile: the next one

    async def fill(self) -> int:
        """Queued conversations to free agents, in queue order, until one of them is out."""
        if not self.auto:
            return 0
        given = 0
        for conversation in await self.store.next_queued():
            said = await self.offer(conversation)
            if said is None and conversation.status == "queued":
                break  # nobody free: the rest wait too
            given += said is not None
        return given

    async def reassign_unanswered(self) -> int:
        """Assigned conversations whose agent has not replied in `reassign_after_s`."""
        if not self.auto:
            return 0
        cutoff = utcnow() - timedelta(seconds=self.policy.escalation.reassign_after_s)
        moved = 0
        for conversation in await self.store.unanswered_since(cutoff):
            current = conversation.agent or ""
            agent = await self.store.next_agent(self.online_since(), exclude=[current])
            if agent is None:
                continue  # nobody else free: it stays, and is tried again next tick
            said = await self._give(
                conversation, agent, ("agent",), "reassigned", "agent_transferred", current
            )
            moved += said is not None
        return moved

    async def tick(self) -> int:
        return await self.reassign_unanswered() + await self.fill()

    async def transfer(
        self, conversation: Conversation, by: Agent, to: str, note: Optional[str]
    ) -> None:
        """The holder (or a supervisor) hands a conversation to another agent, who must be
        online with a free place; the note travels with it to the receiver."""
        if conversation.status not in ("agent", "queued"):
            raise NotAllowed(f"conversation is {conversation.status}")
        holder = conversation.agent if conversation.status == "agent" else None
        if holder and holder != by.username and by.role != "supervisor":
            raise NotAllowed(f"conversation is taken by {holder}")
        if to == holder:
            raise NotAllowed(f"conversation is with {to} already")
        summary = dict(conversation.summary)
        summary["transfer"] = {
            "from": holder or by.username,
            "to": to,
            "note": note,
            "at": utcnow().isoformat(),
        }
        said = await self._give(
            conversation,
            to,
            (conversation.status,),
            "transferred",
            "agent_transferred",
            holder,
            assignment="transfer",
            summary=summary,
            data={"from": holder or by.username, "by": by.username, "note": note},
        )
        if said is None:
            current = await self.store.get(conversation.id)
            if current is not None and current.status == conversation.status:
                raise NotAllowed(f"{to} is not online or has no free place")
            raise NotAllowed("conversation changed meanwhile")
        await self.speaker.hub.publish(
            conversation.id,
            {"type": "transfer", "from": holder or by.username, "to": to, "note": note},
        )

    async def _give(
        self,
        conversation: Conversation,
        agent: str,
        from_states: Sequence[str],
        kind: str,
        scene: str,
        held_by: Optional[str] = None,
        assignment: str = "auto",
        data: Optional[Dict[str, Any]] = None,
        **extra: Any,
    ) -> Optional[Message]:
        now = utcnow()
        values: Dict[str, Any] = {
            "assigned_at": now,
            "assignment": assignment,
            "idle_deadline": None,
            **extra,
        }
        result = await self.store.assign(
            conversation.id, agent, from_states, self.online_since(), held_by=held_by, **values
        )
        if result != "ok":
            if result == "conflict":
                fresh = await self.store.get(conversation.id)
                if fresh is not None:
                    conversation.status, conversation.agent = fresh.status, fresh.agent
            return None
        waited = (
            (now - conversation.waiting_since).total_seconds()
            if kind == "assigned" and conversation.waiting_since
            else None
        )
        await self.store.add_event(conversation.id, kind, agent=agent, value=waited, data=data)
        await self.speaker.announce(conversation, status="agent", agent=agent, **values)
        message = await self.speaker.say(conversation, scene, sender="agent", agent=agent)
        await self.speaker.tell_rasa(conversation, [{"event": "bot", "text": message.text}])
        return message
