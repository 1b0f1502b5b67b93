"""The compose implementation: a client of nerdpy.engine's public API only."""
