"""The benchmark suite of issue 7: `python -m bench` (or `make bench`), `--quick` for a small smoke run.

Each benchmark starts its own nats-server (and fake Anthropic server where it needs one) and compares the
worker with a bare baseline measured in the same run, so the ratios hold on whatever machine runs them.
"""

__all__: list[str] = []
