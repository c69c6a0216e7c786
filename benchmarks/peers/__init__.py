"""Peer servers for the serving benchmark (run inside benchmarks/.venvs/serving)."""
