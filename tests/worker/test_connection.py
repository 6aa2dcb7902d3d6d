"""Connecting as ops configure it: mutual TLS from NATS_TLS_CA / NATS_TLS_CERT / NATS_TLS_KEY, and a seed list."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from worker.embedded import NatsServer, free_port
from worker.jetstream.topology import connect
from worker.metrics import Metrics
from worker.settings import Settings

pytestmark = [pytest.mark.nats, pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
             "-keyout", "ca-key.pem", "-out", "ca.pem", cwd=tmp_path)  # fmt: skip
    (tmp_path / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", f"{name}-key.pem", "-out", f"{name}.csr", cwd=tmp_path)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
                 "-days", "1", "-extfile", "san.ext", "-out", f"{name}.pem", cwd=tmp_path)  # fmt: skip
    return tmp_path


@pytest.fixture
def tls_server(pki: Path) -> Iterator[NatsServer]:
    args = ("--tlsverify", "--tlscert", str(pki / "server.pem"), "--tlskey", str(pki / "server-key.pem"),
            "--tlscacert", str(pki / "ca.pem"))  # fmt: skip
    with NatsServer(extra_args=args) as server:
        yield server


async def test_mutual_tls_from_the_settings(tls_server: NatsServer, pki: Path) -> None:
    settings = Settings.from_env(
        {
            "NATS_URL": f"tls://127.0.0.1:{tls_server.port}",
            "NATS_TLS_CA": str(pki / "ca.pem"),
            "NATS_TLS_CERT": str(pki / "client.pem"),
            "NATS_TLS_KEY": str(pki / "client-key.pem"),
        }
    )
    client = await connect(settings, name="tls-test", metrics=Metrics())
    try:
        assert client.is_connected
        await client.jetstream().account_info()
    finally:
        await client.close()


async def test_seed_list_skips_a_dead_server(nats_server: NatsServer) -> None:
    dead = f"nats://127.0.0.1:{free_port()}"
    settings = Settings.from_env({"NATS_URL": f"{dead},{nats_server.url}"})
    client = await connect(settings, name="seed-test", metrics=Metrics())
    try:
        assert client.connected_url is not None
        assert client.connected_url.port == nats_server.port
    finally:
        await client.close()
