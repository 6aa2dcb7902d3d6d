"""Scenario 11: the quota race. One user, a thousand jobs at once, three `agent-worker run` replicas, and a
monthly quota that about half the runs fit in (docs/contract.md §9).

Every replica reserves and settles on the same key of the real usage bucket at once. Afterwards the bucket
must agree with the results stream exactly: billed equals the sum of the stored results' billedTokens,
billed is within the quota, nothing is left reserved, and every job has exactly one result, completed or
quota_exceeded. The same holds when a replica is killed with SIGKILL mid-run (its runs' reservations are
reused by the deliveries that follow) and when the nats-server restarts mid-run (writes whose answer was
lost are read back, never applied twice).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from nats.js.errors import NoKeysError

from catalog.quota import MonthlyUsage
from testkit.jobs import example_job
from tests.reliability.harness import Fleet, Run, nats_client, volume
from tests.reliability.ledger import settle, stream_count, wait_until
from tests.reliability.traffic import good_jobs, publish_jobs
from worker.contract import RESULTS_STREAM
from worker.embedded import NatsServer

pytestmark = pytest.mark.system

JOBS = volume(1000)  # soak: 10,000
MAX_TOKENS = 16
USER = example_job()["userId"]
# What the fake Anthropic bills one of these jobs on Sonnet (×3): input about four characters a token, and
# its five-word reply. The quota would bill 80% of the runs; the holds of the runs in flight (their most
# possible bill, about six times the real one) keep some out, so about half fit.
_SYSTEM = example_job()["systemPrompt"]
_MESSAGE_CHARS = len("Summarise the notes of run quota-000000.")
BILL = (math.ceil((len(_SYSTEM) + _MESSAGE_CHARS) / 4) + 5) * 3
QUOTA = JOBS * 4 // 5 * BILL
OUTAGE_SECS = 2.0


def quota_catalog(directory: Path) -> Path:
    """The built-in catalog with the m5 quota lowered to QUOTA."""
    text = resources.files("catalog").joinpath("default.toml").read_text(encoding="utf-8")
    assert text.count("monthly_quota = 2_000_000") == 1
    path = directory / "quota-race.toml"
    path.write_text(text.replace("monthly_quota = 2_000_000", f"monthly_quota = {QUOTA}"), encoding="utf-8")
    return path


async def user_usage(js: Any) -> tuple[MonthlyUsage, list[str]]:
    """The user's usage over every month key it has (a run at midnight UTC on a month's last day spans two)."""
    kv = await js.key_value("MASCHINA_USAGE")
    try:
        keys = [key for key in await kv.keys() if key.startswith(f"{USER}.")]
    except NoKeysError:
        keys = []
    billed, reserved = 0, dict[str, int]()
    for key in keys:
        usage = MonthlyUsage.from_json((await kv.get(key)).value or b"")
        billed += usage.billed
        reserved.update(usage.reserved)
    return MonthlyUsage(billed, reserved), keys


@pytest.mark.parametrize("fault", ["none", "kill -9", "server restart"])
async def test_one_user_a_thousand_jobs_three_replicas(
    fleet: Fleet, nats_server: NatsServer, scenario: Callable[[str], Run], tmp_path: Path, fault: str
) -> None:
    run = scenario(f"11 quota race, {fault}")
    provider = await fleet.provider("--delay", "0.05")
    settings = {"WORKER_QUOTAS": "on", "WORKER_CATALOG": str(quota_catalog(tmp_path))}
    replicas = await fleet.replicas(provider, 3, **settings)
    async with nats_client(nats_server.url) as nc:
        js = nc.jetstream()
        report = await publish_jobs(js, good_jobs(JOBS, prefix="quota", max_tokens=MAX_TOKENS))
        run.sent = report.acked
        if fault != "none":

            async def a_third_done() -> bool:
                return await stream_count(js, RESULTS_STREAM) >= JOBS // 3

            await wait_until(a_third_done, within=120, what="a third of the results")
            if fault == "kill -9":
                replicas[0].kill()
            else:
                await asyncio.to_thread(nats_server.stop)
                await asyncio.sleep(OUTAGE_SECS)  # the length of the outage, not a synchronisation
                await asyncio.to_thread(nats_server.start)
        await settle(js, outcomes=JOBS, within=120 + JOBS / 10)
        usage, keys = await user_usage(js)
        conflicts = sum(await asyncio.gather(*(_conflicts(replica) for replica in replicas if replica.alive)))
        figures, ledger = await run.finish(
            js, provider=provider, notes=f"billed {usage.billed:,} of {QUOTA:,}; CAS conflicts {conflicts:,}"
        )
    figures.assert_clean(ledger, run.sent)
    assert len(run.sent) == JOBS
    outcomes = {(records[0].status, records[0].code) for records in ledger.results.values()}
    assert outcomes == {("completed", None), ("rejected", "quota_exceeded")}
    billed_in_results = sum(records[0].billed_tokens for records in ledger.results.values())
    # The bucket and the billing records agree exactly; nothing over the quota, nothing left held.
    assert usage.billed == billed_in_results
    assert usage.billed <= QUOTA
    assert dict(usage.reserved) == {}
    assert keys, "no usage key was written"
    completed = ledger.statuses()["completed"]
    print(f"{fault}: {completed} completed, {JOBS - completed} quota_exceeded, keys {keys}")
    assert JOBS // 4 < completed < JOBS * 4 // 5


async def _conflicts(replica: Any) -> int:
    for line in (await replica.metrics_text()).splitlines():
        if line.startswith("agent_worker_quota_cas_conflicts_total "):
            return int(float(line.split()[1]))
    return 0
