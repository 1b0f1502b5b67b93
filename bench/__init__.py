"""Benchmarks comparing nerdpy with the baselines (run by hand, never by CI)."""
