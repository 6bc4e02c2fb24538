"""Benchmarks: `uv run python -m bench` prints one JSON line per figure with its ratio to a ceiling
measured in the same run on the same machine."""
