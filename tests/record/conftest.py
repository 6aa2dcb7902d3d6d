"""The worker tests' in-process worker, for the record tests that need one consuming beside them."""

from tests.worker.conftest import provider, start_worker

__all__ = ["provider", "start_worker"]
