"""Fixtures of the reliability suite: a nats-server, a fleet of child processes, and the figures table.

Every test here is marked `soak`, so `make soak` (`-m soak`, `AGENT_WORKER_SOAK=1`) selects exactly this
suite at ten times the volume, while the default run includes it at the short volume.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.harness import SOAK, Fleet, Run
from tests.reliability.ledger import Figures
from worker.embedded import NatsServer

_FIGURES: list[Figures] = []
_HERE = Path(__file__).parent
# A soak scenario runs ten times the jobs; its time budget grows with it.
_SOAK_TIMEOUT_SECS = 3600


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.soak)
            if SOAK:
                item.add_marker(pytest.mark.timeout(_SOAK_TIMEOUT_SECS))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _FIGURES:
        return
    terminalreporter.section("reliability figures" + (" (soak)" if SOAK else ""))
    terminalreporter.write_line(
        "| scenario | sent | stored | lost | >1 result | provider calls | dead-lettered | wall s | notes |"
    )
    terminalreporter.write_line("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for f in _FIGURES:
        terminalreporter.write_line(
            f"| {f.scenario} | {f.sent} | {f.stored} | {f.lost} | {f.duplicated} | {f.provider_calls} "
            f"| {f.dead_lettered} | {f.wall_secs:.1f} | {f.notes} |"
        )


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(store_dir=tmp_path / "nats-store")
    server.store_dir.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def fleet_factory(tmp_path: Path) -> Iterator[Callable[[str], Fleet]]:
    """Makes the scenario's fleet for a given NATS URL (one node, or a cluster's seed list).

    Request it after the server fixture, so its teardown (stopping the children) runs first.
    """
    fleets: list[Fleet] = []

    def make(nats_url: str) -> Fleet:
        fleet = Fleet(tmp_path, nats_url)
        fleets.append(fleet)
        return fleet

    yield make
    for fleet in fleets:
        fleet.close()
        # Shown only when the scenario failed (pytest prints captured output of failing tests).
        print(fleet.report())


@pytest.fixture
def fleet(nats_server: NatsServer, fleet_factory: Callable[[str], Fleet]) -> Fleet:
    return fleet_factory(nats_server.url)


@pytest.fixture
def scenario() -> Callable[[str], Run]:
    return lambda name: Run(name, _FIGURES)
