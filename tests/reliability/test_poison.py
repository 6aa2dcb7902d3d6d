"""Scenario 7: poison. Hostile and fuzzed bodies, mixed with good jobs, through a live worker with signing on.

Each body's outcome is what the contract prescribes, cross-checked against the single door
(`worker.door.Door`): a dead letter (body unchanged, the four headers, then terminated, no result) or
exactly one result; the replicas never crash, and the good jobs among them complete on the first delivery.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

import orjson
import pytest

from tests.reliability.harness import Fleet, Run, nats_client, volume
from tests.reliability.ledger import Ledger, settle
from tests.reliability.poison import SIGNING_KEY, Poison, fuzzed, hostile, sign
from tests.reliability.traffic import Outgoing, envelope, publish_jobs
from worker.contract import JOB_SUBJECT
from worker.door import DeadLetter, Door, Rejected
from worker.embedded import NatsServer

pytestmark = pytest.mark.system

GOOD = volume(100)  # soak: 1,000
FUZZED = volume(100)  # soak: 1,000
_DOOR_CODES = ("rejected:invalid_job", "rejected:input_too_large")


def expected_outcome(item: Poison, door: Door) -> str:
    """The contract's outcome, checked against the door where the door decides it."""
    verdict = door.open(item.body, item.headers)
    if isinstance(verdict, DeadLetter):
        by_door = f"dlq:{verdict.reason.value}"
    elif isinstance(verdict, Rejected):
        by_door = f"rejected:{verdict.code.value}"
    else:
        by_door = "job"
    if item.expected == "door":
        return by_door
    decided_by_door = item.expected.startswith("dlq:") or item.expected in _DOOR_CODES
    assert by_door == (item.expected if decided_by_door else "job"), f"{item.label}: door says {by_door}"
    return item.expected


def run_id_of(item: Poison, door: Door) -> str:
    verdict = door.open(item.body, item.headers)
    assert not isinstance(verdict, DeadLetter)
    return verdict.ref.run_id


async def test_poison_is_dead_lettered_or_rejected_and_good_jobs_pass(
    fleet: Fleet, nats_server: NatsServer, scenario: Callable[[str], Run]
) -> None:
    run = scenario("7 poison + fuzz among good jobs, signing on")
    door = Door(signing_key=SIGNING_KEY)
    good = []
    for n in range(GOOD):
        raw = orjson.dumps(envelope(f"good-{n:05d}"))
        good.append(Poison(f"good {n}", raw, "completed", {"Maschina-Signature": sign(raw)}, f"good-{n:05d}"))
    items = [*hostile(), *fuzzed(FUZZED), *good]
    random.Random(7).shuffle(items)
    outcomes = {item.label: expected_outcome(item, door) for item in items}
    dead = Counter(item.body for item in items if outcomes[item.label].startswith("dlq:"))
    with_result = {run_id_of(item, door): item for item in items if not outcomes[item.label].startswith("dlq:")}

    provider = await fleet.provider("--delay", "0.05")
    replicas = await fleet.replicas(provider, 1, WORKER_SIGNING_KEY=SIGNING_KEY.decode())
    async with nats_client(nats_server.url) as nc:
        js = nc.jetstream()
        report = await publish_jobs(js, [Outgoing(item.label, item.body, item.headers) for item in items])
        assert not report.failed
        run.sent = report.acked
        await settle(js, outcomes=len(with_result) + sum(dead.values()), within=120)

        def lost(ledger: Ledger) -> set[str]:
            dead_bodies = Counter(record.body for record in ledger.dead_letters)
            missing = {item.label for item in items if item.body in dead and dead_bodies[item.body] < dead[item.body]}
            return missing | {item.label for run_id, item in with_result.items() if run_id not in ledger.results}

        figures, ledger = await run.finish(
            js,
            provider=provider,
            lost=lost,
            notes=f"{len(items) - GOOD} hostile/fuzzed + {GOOD} good; "
            + ", ".join(f"{k} {v}" for k, v in sorted(Counter(outcomes.values()).items())),
        )

    for replica in replicas:
        assert replica.alive, f"{replica.name} crashed:\n{replica.log_tail()}"
        assert "job_crashed" not in replica.log_path.read_text(), f"{replica.name} logged a crashed job"
    figures.assert_clean(ledger, set(with_result))
    assert figures.lost == 0
    # Dead letters: the body unchanged, the four headers, and no result for them.
    assert Counter(record.body for record in ledger.dead_letters) == dead
    for letter in ledger.dead_letters:
        assert letter.original_subject == JOB_SUBJECT
        assert letter.stream_seq is not None
        assert letter.stream_seq.isdigit()
        assert letter.detail
    reasons = Counter(record.reason for record in ledger.dead_letters)
    expected_reasons = Counter(o.removeprefix("dlq:") for o in outcomes.values() if o.startswith("dlq:"))
    assert reasons == expected_reasons
    # Results: one per run, with the status and code the contract gives.
    for run_id, item in with_result.items():
        record = ledger.one(run_id)
        expected = outcomes[item.label]
        if expected == "completed":
            assert record.status == "completed", f"{item.label}: {record}"
        elif expected.startswith("rejected:"):
            assert (record.status, record.code) == ("rejected", expected.removeprefix("rejected:")), item.label
    for n in range(GOOD):
        assert ledger.one(f"good-{n:05d}").attempt == 1
