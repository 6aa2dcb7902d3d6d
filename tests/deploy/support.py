"""What the deployment tests share: where deploy/ is, nkey identities, and a client session as one identity."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import nkeys
from nats.aio.client import Client

__all__ = [
    "CANARY_SUBJECT",
    "DEPLOY",
    "NATS_CONFIG",
    "VIOLATION_TIMEOUT_SECS",
    "Connect",
    "Identities",
    "Identity",
    "Session",
    "new_identity",
]

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


def new_identity(env_name: str, folder: Path) -> Identity:
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    public_key = nkeys.from_seed(bytearray(seed)).public_key.decode()
    seed_file = folder / f"{env_name.lower()}.nk"
    seed_file.write_bytes(seed)
    return Identity(env_name=env_name, public_key=public_key, seed_file=seed_file)


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
