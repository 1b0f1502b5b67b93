"""Thin click command modules: flags -> engine call -> rendering. Loaded lazily by nerdpy.cli."""
