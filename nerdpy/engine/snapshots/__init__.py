"""Snapshots: the Snapshotter protocol, the overlay implementation, safe layer apply, diff and mounts."""
