"""Benchmarks of the relay against its ceiling (see docs/benchmarks.md); not shipped in the wheel."""
