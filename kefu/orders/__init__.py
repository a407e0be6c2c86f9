"""The built-in demo order backend (the embedded default for order lookups)."""
