"""Mechanisms written once: sizes and durations, filesystem helpers, compression sniffing, libc calls."""
