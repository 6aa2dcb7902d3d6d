"""Fixtures for the deployment tests: nkey identities and a nats-server running deploy/nats/nats-server.conf."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nats
import nkeys
import pytest
from nats.aio.client import Client

from worker.embedded import NatsServer, free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
NATS_CONFIG = DEPLOY / "nats" / "nats-server.conf"


@dataclass(frozen=True, slots=True)
class Identity:
    """A NATS user: the public nkey the server config names, and the seed file the client signs with."""

    env_name: str
    public_key: str
    seed_file: Path


@dataclass(frozen=True, slots=True)
class Identities:
    worker: Identity
    api: Identity
    admin: Identity

    def all(self) -> tuple[Identity, ...]:
        return (self.worker, self.api, self.admin)


def _new_identity(env_name: str, folder: Path) -> Identity:
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    public_key = nkeys.from_seed(bytearray(seed)).public_key.decode()
    seed_file = folder / f"{env_name.lower()}.nk"
    seed_file.write_bytes(seed)
    return Identity(env_name=env_name, public_key=public_key, seed_file=seed_file)


@pytest.fixture(scope="module")
def identities(tmp_path_factory: pytest.TempPathFactory) -> Identities:
    folder = tmp_path_factory.mktemp("nkeys")
    return Identities(
        worker=_new_identity("AGENT_WORKER_NKEY", folder),
        api=_new_identity("MASCHINA_API_NKEY", folder),
        admin=_new_identity("MASCHINA_ADMIN_NKEY", folder),
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


@dataclass
class Session:
    """A client connected as one identity, with the permission violations the server reported to it."""

    nc: Client
    violations: asyncio.Queue[str] = field(default_factory=asyncio.Queue)

    async def refused(self) -> str:
        """The next permission violation the server reports on this connection."""
        return await asyncio.wait_for(self.violations.get(), VIOLATION_TIMEOUT_SECS)

    async def accepted(self) -> None:
        """Assert that nothing sent so far was refused.

        A PONG may overtake an -ERR, so a flush proves nothing; but the server reports a connection's
        violations in the order it met them, so when a publish nobody may make is reported first,
        everything sent before it was allowed.
        """
        await self.nc.publish(CANARY_SUBJECT, b"")
        first = await self.refused()
        assert CANARY_SUBJECT in first, f"the server refused: {first}"


CANARY_SUBJECT = "deploy-test.canary"
VIOLATION_TIMEOUT_SECS = 5
Connect = Callable[[Identity], Awaitable[Session]]


@pytest.fixture
async def connect(secured_nats: NatsServer) -> AsyncIterator[Connect]:
    sessions: list[Session] = []

    async def open_session(identity: Identity) -> Session:
        violations: asyncio.Queue[str] = asyncio.Queue()

        async def on_error(exc: Exception) -> None:
            violations.put_nowait(str(exc))

        nc = await nats.connect(
            secured_nats.url, nkeys_seed=str(identity.seed_file), error_cb=on_error, allow_reconnect=False
        )
        session = Session(nc=nc, violations=violations)
        sessions.append(session)
        return session

    yield open_session
    for session in sessions:
        await session.nc.close()
