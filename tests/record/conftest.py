"""Fixtures for record and reprice: the worker tests' client connection and result watch."""

from tests.worker.conftest import client, results

__all__ = ["client", "results"]
