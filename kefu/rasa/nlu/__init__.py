"""Custom Rasa graph components for Chinese chat text."""
