"""Fixtures for the deployment tests: nkey identities and a nats-server running deploy/nats/nats-server.conf."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import nats
import pytest

from tests.deploy.support import NATS_CONFIG, Connect, Identities, Identity, Session, new_identity
from worker.contract import WORKER_INBOX_PREFIX
from worker.embedded import NatsServer, free_port


@pytest.fixture(scope="module")
def identities(tmp_path_factory: pytest.TempPathFactory) -> Identities:
    folder = tmp_path_factory.mktemp("nkeys")
    return Identities(
        worker=new_identity("AGENT_WORKER_NKEY", folder),
        api=new_identity("MASCHINA_API_NKEY", folder),
        admin=new_identity("MASCHINA_ADMIN_NKEY", folder),
    )


@pytest.fixture
def monitoring_port() -> int:
    return free_port()


@pytest.fixture
def secured_nats(identities: Identities, monitoring_port: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[NatsServer]:
    """nats-server with the deployment's own config file; the public keys come from the environment as in prod.
    Monitoring (`/connz`) listens on `monitoring_port`, as `-m 8222` does in compose."""
    for identity in identities.all():
        monkeypatch.setenv(identity.env_name, identity.public_key)
    with NatsServer(config_file=NATS_CONFIG, extra_args=("-m", str(monitoring_port))) as server:
        yield server


@pytest.fixture
async def connect(secured_nats: NatsServer) -> AsyncIterator[Connect]:
    sessions: list[Session] = []

    async def open_session(identity: Identity) -> Session:
        violations: asyncio.Queue[str] = asyncio.Queue()

        async def on_error(exc: Exception) -> None:
            violations.put_nowait(str(exc))

        # The worker's identity connects as the worker does: its inboxes under the worker's own prefix.
        inbox_prefix = WORKER_INBOX_PREFIX if identity.env_name == "AGENT_WORKER_NKEY" else "_INBOX"
        nc = await nats.connect(
            secured_nats.url,
            nkeys_seed=str(identity.seed_file),
            error_cb=on_error,
            allow_reconnect=False,
            inbox_prefix=inbox_prefix,
        )
        session = Session(nc=nc, violations=violations)
        sessions.append(session)
        return session

    yield open_session
    for session in sessions:
        await session.nc.close()
