"""nerdpy: a Docker-compatible container command line with an embedded, daemonless engine."""

__version__ = "0.1.0"
