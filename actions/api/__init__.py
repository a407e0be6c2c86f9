"""Clients for the systems custom actions talk to."""
