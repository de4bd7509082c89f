"""Benchmarks: scripts that print figures and write JSON (see docs/performance.md)."""
