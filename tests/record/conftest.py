"""Fixtures for record and reprice: the worker tests' client and result watch, and replay's logging reset.

`replay` run in process points structlog at the stream captured for that test; the reset (autouse) puts
it back, so a worker started by a later test does not log to a closed stream.
"""

from tests.replay.conftest import _reset_logging
from tests.worker.conftest import client, results

__all__ = ["_reset_logging", "client", "results"]
