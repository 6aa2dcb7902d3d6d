"""Issue 11 items 3 and 4 against a real `agent-worker run`: the worker's inboxes lie outside every reply
prefix (contract section 1), and no secret reaches anything it writes (section 11).

The replica connects with `NATS_URL=nats://user:<password>@127.0.0.1:PORT` to a server that requires that
password, carries a recognisable Anthropic key, goes through a server restart (so it logs
`nats_disconnected`, `nats_reconnected` and errors), and runs jobs: neither secret appears in its output,
/readyz, /healthz or /metrics, while `nats_connected`/`nats_reconnected` name the server as host:port.
Its subscriptions, read from the server's own /connz, all lie under `_AW_INBOX.`; a job naming one as its
replyTo is rejected; a start-up setting that would cover that prefix, or a malformed one, stops the worker
with a message naming the variable and quoting nothing of the environment.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import nats
import orjson
import pytest
from nats.aio.client import Client

from testkit.process import WorkerProcess
from tests.hostile.harness import API_KEY, Stack, job_body, new_run_id, settle, start_stack
from tests.reliability.ledger import wait_until
from worker.contract import JOB_SUBJECT
from worker.embedded import free_port

pytestmark = pytest.mark.system

USER = "aw-user"
PASSWORD = "sekretpassword-7Qx3v9kT2"
MONITOR_PORT = free_port()
SERVER_CONFIG = f"""
http_port: {MONITOR_PORT}
authorization {{
  user: {USER}
  password: {PASSWORD}
}}
"""
WORKER_ID = "replica"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    log_dir = Path(tmp_path_factory.mktemp("secrets"))
    port = free_port()
    stack = start_stack(
        log_dir,
        server_config=SERVER_CONFIG,
        server_port=port,
        NATS_URL=f"nats://{USER}:{PASSWORD}@127.0.0.1:{port}",
    )
    yield stack
    stack.close()


@pytest.fixture
async def nc(stack: Stack) -> AsyncIterator[Client]:
    client = await nats.connect(f"nats://127.0.0.1:{stack.server.port}", user=USER, password=PASSWORD)
    yield client
    await client.close()


def _fragments(secret: str, width: int = 20) -> list[str]:
    return [secret[i : i + width] for i in range(len(secret) - width + 1)] or [secret]


def assert_no_secret(text: str, where: str) -> None:
    for secret in (PASSWORD, API_KEY):
        for fragment in _fragments(secret, min(20, len(secret))):
            assert fragment not in text, f"{where} holds a piece of a secret: {fragment!r}"
    assert f"{USER}:" not in text, f"{where} shows the URL's user information"


async def test_worker_inboxes_lie_outside_every_reply_prefix(stack: Stack, nc: Client) -> None:
    async with httpx.AsyncClient(timeout=5.0) as client:
        connz = (await client.get(f"http://127.0.0.1:{MONITOR_PORT}/connz?subs=1")).json()
    [worker] = [conn for conn in connz["connections"] if conn.get("name") == WORKER_ID]
    subscriptions = worker.get("subscriptions_list", [])
    assert subscriptions
    assert all(subject.startswith("_AW_INBOX.") for subject in subscriptions), subscriptions

    # A job naming the worker's own inbox as its replyTo is refused like any other subject outside _INBOX.
    aimed = new_run_id("aimed")
    await nc.jetstream().publish(JOB_SUBJECT, job_body(aimed, reply_to=subscriptions[0].replace("*", "x")))
    fine = new_run_id("fine")
    copies = await nc.subscribe(f"_INBOX.caller.{fine}")
    await nc.jetstream().publish(JOB_SUBJECT, job_body(fine, reply_to=f"_INBOX.caller.{fine}"))
    outcomes = await settle(nc, [aimed, fine])
    print(f"inboxes: {outcomes.figures(sent=2)}")
    record = outcomes.ledger.one(aimed)
    assert (record.status, record.code) == ("rejected", "invalid_job")
    assert outcomes.ledger.one(fine).status == "completed"
    assert orjson.loads((await copies.next_msg(timeout=10)).data)["runId"] == fine


async def test_no_secret_in_logs_probes_or_metrics_through_a_reconnect(stack: Stack, nc: Client) -> None:
    before = new_run_id("secret-before")
    await nc.jetstream().publish(JOB_SUBJECT, job_body(before))
    await settle(nc, [before])
    await nc.close()

    stack.server.stop()
    await wait_until(_logged(stack, "nats_disconnected"), within=30, what="the replica noticing the server gone")
    stack.server.start()
    await wait_until(_logged(stack, "nats_reconnected"), within=60, what="the replica reconnecting")

    client = await nats.connect(f"nats://127.0.0.1:{stack.server.port}", user=USER, password=PASSWORD)
    try:
        after = new_run_id("secret-after")
        await client.jetstream().publish(JOB_SUBJECT, job_body(after))
        outcomes = await settle(client, [before, after])
    finally:
        await client.close()
    assert outcomes.ledger.one(after).status == "completed"

    server = f"127.0.0.1:{stack.server.port}"
    events = [orjson.loads(line) for line in stack.output().splitlines() if line.startswith("{")]
    shown = {event["event"]: event.get("server") for event in events if event["event"].startswith("nats_")}
    assert shown["nats_connected"] == server
    assert shown["nats_reconnected"] == server
    assert_no_secret(stack.output(), "the replica's output")
    async with httpx.AsyncClient(timeout=5.0) as http:
        for path in ("/readyz", "/healthz", "/metrics"):
            response = await http.get(f"http://127.0.0.1:{stack.worker.http_port}{path}")
            assert response.status_code == 200, path
            assert_no_secret(response.text, path)


def _logged(stack: Stack, event: str) -> Callable[[], Awaitable[bool]]:
    async def seen() -> bool:
        return f'"event":"{event}"' in stack.output()

    return seen


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WORKER_REPLY_PREFIXES", "_INBOX"),
        ("WORKER_REPLY_PREFIXES", "_AW_INBOX."),
        ("WORKER_HTTP_PORT", "not-a-port"),
    ],
)
async def test_a_bad_setting_names_its_variable_and_quotes_no_secret(tmp_path: Path, variable: str, value: str) -> None:
    port = free_port()
    worker = WorkerProcess(
        "bad-setting",
        {
            "NATS_URL": f"nats://{USER}:{PASSWORD}@127.0.0.1:{port}",
            "ANTHROPIC_API_KEY": API_KEY,
            "WORKER_SIGNING_KEY": API_KEY[::-1],
            variable: value,
        },
        tmp_path,
    )
    worker.spawn()
    assert await worker.wait(within=60) == 2
    output = worker.log_path.read_text()
    assert variable in output
    assert "input_value" not in output
    assert "Traceback" not in output
    assert_no_secret(output, "the start-up error")
    for fragment in _fragments(API_KEY[::-1]):  # the signing key
        assert fragment not in output
