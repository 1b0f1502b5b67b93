"""Looking after the whole store: info, disk usage, prune, check (fsck), doctor, events, boot."""
