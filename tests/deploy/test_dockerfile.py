"""deploy/Dockerfile, checked without a Docker engine: its instructions are parsed and its health check is run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatch
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tests.deploy.manifests import k8s_object
from tests.deploy.support import DEPLOY
from worker.embedded import free_port

pytestmark = pytest.mark.nats

DOCKERFILE = DEPLOY / "Dockerfile"
REPOSITORY = DEPLOY.parent


@dataclass(frozen=True, slots=True)
class Instruction:
    keyword: str
    arguments: str


def instructions() -> list[Instruction]:
    """The Dockerfile's instructions, comments dropped and backslash-continued lines joined."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    result = []
    for text in logical:
        keyword, _, arguments = text.partition(" ")
        result.append(Instruction(keyword.upper(), arguments.strip()))
    return result


def stages() -> list[list[Instruction]]:
    found: list[list[Instruction]] = []
    for instruction in instructions():
        if instruction.keyword == "FROM":
            found.append([])
        assert found, "an instruction before the first FROM"
        found[-1].append(instruction)
    return found


def runtime() -> list[Instruction]:
    return stages()[-1]


def only(stage: list[Instruction], keyword: str) -> Instruction:
    (found,) = [instruction for instruction in stage if instruction.keyword == keyword]
    return found


def test_multi_stage_build_on_slim_python() -> None:
    builder, final = stages()[0], runtime()
    assert len(stages()) >= 2
    assert builder[0].arguments.split()[-2:] == ["AS", "builder"]
    assert final[0].arguments.split()[0] == "python:3.11-slim"
    assert any("pip wheel" in i.arguments for i in builder if i.keyword == "RUN")
    # The runtime installs from the builder's wheels only, never from source or the network.
    (install,) = [i for i in final if i.keyword == "RUN" and "pip install" in i.arguments]
    assert "from=builder" in install.arguments
    assert "--no-index" in install.arguments
    assert not any(i.keyword == "COPY" and "--from" not in i.arguments for i in final), "source copied into runtime"


def test_runs_as_the_non_root_user_kubernetes_expects() -> None:
    user = only(runtime(), "USER").arguments
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), "a numeric USER lets runAsNonRoot verify it"
    assert int(uid) != 0
    assert gid.isdigit()
    assert int(gid) != 0
    pod_security = k8s_object("Deployment")["spec"]["template"]["spec"]["securityContext"]
    assert (pod_security["runAsUser"], pod_security["runAsGroup"]) == (int(uid), int(gid))


def test_no_nats_server_inside() -> None:
    for instruction in runtime():
        if instruction.keyword in {"RUN", "COPY", "ADD"}:
            assert "nats-server" not in instruction.arguments
            assert "[embedded]" not in instruction.arguments
            assert "[dev]" not in instruction.arguments


def test_starts_the_worker_as_pid_1_with_the_http_port_exposed() -> None:
    final = runtime()
    assert json.loads(only(final, "ENTRYPOINT").arguments) == ["agent-worker"]
    assert json.loads(only(final, "CMD").arguments) == ["run"]
    port = only(final, "EXPOSE").arguments
    environment = " ".join(i.arguments for i in final if i.keyword == "ENV").split()
    assert f"WORKER_HTTP_PORT={port}" in environment


def test_build_context_holds_what_the_builder_copies() -> None:
    ignore = [line for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines() if line and line[0] != "#"]
    kept = [pattern[1:].rstrip("/") for pattern in ignore if pattern.startswith("!")]
    for instruction in stages()[0]:
        if instruction.keyword != "COPY":
            continue
        *sources, _ = instruction.arguments.split()
        for source in sources:
            name = source.rstrip("/")
            if not name.endswith("*"):
                assert (REPOSITORY / name).exists(), f"COPY {source}: not in the repository"
            assert any(fnmatch(name, pattern) or fnmatch(pattern, name) for pattern in kept), f"{source} is ignored"


class _Probe(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def probe_server() -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), _Probe)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def healthcheck_exit_code(port: int) -> int:
    """Run the image's HEALTHCHECK command with this interpreter, as Docker would inside the container."""
    arguments = only(runtime(), "HEALTHCHECK").arguments
    assert "CMD [" in arguments, "exec form: no shell needed in the image"
    command = json.loads(arguments[arguments.index("CMD") + 3 :])
    assert command[0] == "python"
    env = {"PATH": os.environ.get("PATH", ""), "WORKER_HTTP_PORT": str(port)}
    return subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, timeout=30).returncode


def test_healthcheck_passes_on_a_healthy_worker(probe_server: HTTPServer) -> None:
    _Probe.status = 200
    assert healthcheck_exit_code(probe_server.server_address[1]) == 0


def test_healthcheck_fails_on_an_unhealthy_or_absent_worker(probe_server: HTTPServer) -> None:
    _Probe.status = 503
    assert healthcheck_exit_code(probe_server.server_address[1]) != 0
    assert healthcheck_exit_code(free_port()) != 0
