"""Fixtures shared by every test folder.

`nats_server`: a real nats-server with JetStream, started for one test on a free loopback port with its
own temporary store, and removed afterwards. Connect with `nats_server.url`; `nats_server.stop()` and then
`nats_server.start()` restart it on the same port and store (a server restart as clients see it).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from worker.embedded import NatsServer


@pytest.fixture
def nats_server() -> Iterator[NatsServer]:
    with NatsServer() as server:
        yield server
