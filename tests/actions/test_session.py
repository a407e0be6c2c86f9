from rasa_sdk.events import ActionExecuted, SessionStarted, SlotSet

from actions.session import ActionSessionStart


async def test_session_start_says_nothing(dispatcher, make_tracker, domain):
    events = await ActionSessionStart().run(dispatcher, make_tracker(), domain.as_dict())
    assert events[0] == SessionStarted()
    assert events[-1] == ActionExecuted("action_listen")
    assert dispatcher.messages == []


async def test_session_start_keeps_the_visitors_name(dispatcher, make_tracker, domain):
    tracker = make_tracker(slots={"name": "王", "phone": None, "order_id": "123"})
    events = await ActionSessionStart().run(dispatcher, tracker, domain.as_dict())
    assert SlotSet("name", "王") in events
    assert not any(e["event"] == "slot" and e["name"] == "order_id" for e in events)
