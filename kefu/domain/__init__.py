"""Plain-Python service logic: policy loading, phrasing, risk, escalation, tone, flows' wording.

Nothing here imports Rasa: a Rasa upgrade cannot touch it.
"""
