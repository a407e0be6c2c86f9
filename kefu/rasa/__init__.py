"""The only package that imports Rasa: NLU components, the escalation policy, the NLG,
the runtime fixes, kefu's Rasa launcher and the evaluations' Rasa calls."""
