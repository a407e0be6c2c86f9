"""The handoff desk: the public front for visitors, and the console for agents."""
