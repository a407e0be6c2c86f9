"""Custom actions for kefu, run by the Rasa SDK action server."""
