"""Scenario 3: a three-node cluster with every stream at three replicas; one node is killed mid-run.

Two runs: the node a replica is connected to (found from the replica's own sockets), and the node
leading the jobs stream. The streams are created at R3 before any worker starts: the worker creates
missing streams with one replica and never rewrites existing ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from testkit.streams import create_streams
from tests.reliability.cluster import NatsCluster
from tests.reliability.harness import Fleet, Run, nats_client, volume
from tests.reliability.ledger import settle, stream_count, stream_info, wait_until
from tests.reliability.traffic import good_jobs, publish_jobs
from worker.contract import JOBS_STREAM, RESULTS_STREAM

pytestmark = pytest.mark.system

JOBS = volume(300)  # soak: 3,000


@pytest.fixture
def cluster() -> Iterator[NatsCluster]:
    nodes = NatsCluster().start()
    try:
        yield nodes
    finally:
        nodes.close()


@pytest.mark.parametrize("victim", ["connected", "leader"])
async def test_kill_a_cluster_node(
    victim: str, cluster: NatsCluster, fleet_factory: Callable[[str], Fleet], scenario: Callable[[str], Run]
) -> None:
    run = scenario(f"3 cluster R3, kill the {'node a replica uses' if victim == 'connected' else 'stream leader'}")
    fleet = fleet_factory(cluster.urls)
    async with nats_client(cluster.urls) as nc:
        js = nc.jetstream()
        await create_streams(js, replicas=3)
        provider = await fleet.provider("--delay", "0.2")
        replicas = await fleet.replicas(provider, 2)
        report = await publish_jobs(js, good_jobs(JOBS, prefix=f"cluster-{victim}"))
        run.sent = report.acked

        async def a_third_done() -> bool:
            return await stream_count(js, RESULTS_STREAM) >= JOBS // 3

        await wait_until(a_third_done, within=120, what="a third of the results")
        if victim == "connected":
            node = cluster.node_serving(replicas[0].pid)
        else:
            node = cluster.node_named((await stream_info(js, JOBS_STREAM)).cluster.leader)
        name = cluster.names[cluster.nodes.index(node)]
        await asyncio.to_thread(node.stop, kill=True)
        await settle(js, outcomes=JOBS, within=120 + JOBS / 10)
        leader = (await stream_info(js, JOBS_STREAM)).cluster.leader
        figures, ledger = await run.finish(js, provider=provider, notes=f"killed {name}; jobs leader now {leader}")
    for replica in replicas:
        assert replica.alive, f"{replica.name} did not survive losing {name}"
    figures.assert_clean(ledger, run.sent)
    assert len(run.sent) == JOBS
    assert ledger.statuses() == {"completed": JOBS}
