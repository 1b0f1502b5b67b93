"""The per-container monitor: the process itself, how it is spawned, its wire protocol, the cleanup handoff."""
