"""The one retry policy and the job's time budget, against real fakes (docs/contract.md §7)."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from testkit import Step
from tests.providers.support import REQUEST, Harness
from worker.contract import ErrorCode
from worker.providers import ProviderError, RetryPolicy, call_with_retry

pytestmark = pytest.mark.nats

FAST = RetryPolicy(base=0.01, cap=0.05, max_calls=5)


def _deadline(seconds: float) -> float:
    return asyncio.get_running_loop().time() + seconds


def _gaps(harness: Harness) -> list[float]:
    arrivals = [sent.at for sent in harness.fake.requests]
    return [later - earlier for earlier, later in itertools.pairwise(arrivals)]


async def test_a_429_then_a_529_then_success_ends_in_a_reply(harness: Harness) -> None:
    harness.fake.script(Step.fault(429, retry_after=0.3), Step.fault(529), Step.reply("finally"))

    reply = await call_with_retry(harness.provider, REQUEST, deadline=_deadline(10), policy=FAST)

    assert reply.text == "finally"
    assert harness.fake.stats.calls == 3
    assert harness.fake.stats.by_status == {429: 1, 529: 1, 200: 1}


async def test_retry_after_is_honoured_between_attempts(harness: Harness) -> None:
    harness.fake.script(Step.fault(429, retry_after=0.5), Step.fault(503, retry_after=0.3, retry_after_format="ms"))

    await call_with_retry(harness.provider, REQUEST, deadline=_deadline(10), policy=FAST)

    first, second = _gaps(harness)
    assert first >= 0.5
    assert second >= 0.3


async def test_backoff_without_retry_after_stays_under_its_bound(harness: Harness) -> None:
    policy = RetryPolicy(base=0.05, cap=0.1, max_calls=4)
    harness.fake.script(Step.fault(500), Step.fault(500), Step.fault(500))

    await call_with_retry(harness.provider, REQUEST, deadline=_deadline(10), policy=policy)

    # Full jitter waits at most min(cap, base * 2**n): 0.05, 0.1, 0.1 (plus the call itself).
    assert all(gap < 0.1 + 0.25 for gap in _gaps(harness))
    assert harness.fake.stats.calls == 4


async def test_a_wait_that_would_pass_the_deadline_is_not_started(harness: Harness) -> None:
    loop = asyncio.get_running_loop()
    harness.fake.script(Step.fault(429, retry_after=5))
    started = loop.time()

    with pytest.raises(ProviderError) as caught:
        await call_with_retry(harness.provider, REQUEST, deadline=started + 2, policy=FAST)

    assert caught.value.code == ErrorCode.PROVIDER_RATE_LIMITED
    assert caught.value.retry_after == pytest.approx(5)
    assert loop.time() - started < 1
    assert harness.fake.stats.calls == 1


async def test_calls_stop_at_max_calls_with_the_last_error(harness: Harness) -> None:
    harness.fake.config.fault_rate = 1.0
    harness.fake.config.fault_statuses = (529,)
    harness.fake.config.retry_after = None

    with pytest.raises(ProviderError) as caught:
        await call_with_retry(harness.provider, REQUEST, deadline=_deadline(10), policy=RetryPolicy(0.01, 0.02, 3))

    assert (caught.value.code, caught.value.retryable) == (ErrorCode.PROVIDER_UNAVAILABLE, True)
    assert harness.fake.stats.calls == 3


async def test_a_non_retryable_error_is_raised_at_once(harness: Harness) -> None:
    harness.fake.script(Step.fault(400), Step.reply())

    with pytest.raises(ProviderError) as caught:
        await call_with_retry(harness.provider, REQUEST, deadline=_deadline(10), policy=FAST)

    assert caught.value.code == ErrorCode.PROVIDER_BAD_REQUEST
    assert harness.fake.stats.calls == 1


async def test_the_timeout_cancels_the_request_and_releases_its_connection(harness: Harness) -> None:
    harness.fake.script(Step.hang())

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await call_with_retry(harness.provider, REQUEST, deadline=_deadline(0.3), policy=FAST)

    async with asyncio.timeout(5):
        stats = await harness.fake.wait_until(lambda s: s.cancelled == 1)
    assert (stats.in_flight, stats.replies) == (0, 0)
    # The pool holds one connection: this call only goes through if the cancelled one was given back.
    async with asyncio.timeout(5):
        reply = await harness.provider.complete(REQUEST)
    assert reply.text


async def test_the_timeout_also_cuts_a_backoff_wait_short(harness: Harness) -> None:
    loop = asyncio.get_running_loop()
    harness.fake.script(Step.fault(429, retry_after=0.2), Step.hang())
    started = loop.time()

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.6):
            await call_with_retry(harness.provider, REQUEST, deadline=started + 0.6, policy=FAST)

    assert loop.time() - started < 1.5
    async with asyncio.timeout(5):
        await harness.fake.wait_until(lambda s: s.cancelled == 1)
    assert harness.fake.stats.calls == 2
