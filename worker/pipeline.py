"""One pipeline for every job, whoever delivers it: gate → provider → billing → result.

The NATS consumer, `replay` and `demo` all call `Pipeline.run`; nothing here knows about NATS.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from catalog import Catalog, Denied, ModelSpec, TierSpec, Usage, bill, gate
from catalog.quota import most_possible_bill
from worker import tracing
from worker.contract import ErrorCode
from worker.door import Rejected
from worker.job import Job, RunRef
from worker.providers.base import Provider, ProviderError, ProviderRequest
from worker.providers.redaction import Redactor
from worker.providers.retry import RetryPolicy, call_with_retry
from worker.quotas import Charge, Quotas
from worker.result import ResultBilling, ResultError, ResultUsage, RunResult, Status

__all__ = ["Pipeline", "Retry", "utcnow"]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Retry:
    """The attempt ended on a retryable provider error and deliveries remain: hand the job back."""

    delay: float
    error: ProviderError


@dataclass(frozen=True, slots=True)
class _Outcome:
    status: Status
    model: ModelSpec | None = None
    """The model the job was routed to; None when the gate refused it."""
    usage: Usage = field(default_factory=Usage)
    text: str | None = None
    stop_reason: str | None = None
    error: ResultError | None = None


class Pipeline:
    def __init__(
        self,
        *,
        catalog: Catalog,
        providers: Mapping[str, Provider],
        worker_id: str,
        retry: RetryPolicy | None = None,
        clock: Callable[[], datetime] = utcnow,
        quotas: Quotas | None = None,
    ) -> None:
        self.catalog = catalog
        self.providers = providers
        self.worker_id = worker_id
        self.retry = retry or RetryPolicy()
        self._clock = clock
        self.quotas = quotas
        """Monthly quotas (docs/contract.md §9); None when they are off."""

    async def run(
        self, verdict: Job | Rejected, *, attempt: int = 1, final: bool = True, published: datetime | None = None
    ) -> RunResult | Retry:
        """Run one delivery of a job. `final` says no delivery remains, so a retryable error ends it `failed`.

        `published` is when the job message was first published (its JetStream timestamp): the month its
        usage counts in. Without one (replay), the month is the clock's.
        """
        started = self._clock()
        if isinstance(verdict, Rejected):
            return self._result(verdict.ref, _rejected(verdict.code, verdict.message), attempt, started)
        outcome = await self._execute(verdict, attempt=attempt, final=final, published=published or started)
        if isinstance(outcome, Retry):
            return outcome
        return self._result(verdict.ref, outcome, attempt, started)

    def undeliverable(self, ref: RunRef, *, attempt: int) -> RunResult:
        """The result of a job that ran out of deliveries without one (docs/contract.md §7)."""
        error = ResultError(
            code=ErrorCode.MAX_DELIVERIES_EXCEEDED,
            message=f"The job was delivered {attempt} times without producing a result.",
            retryable=False,
        )
        return self._result(ref, _Outcome("failed", error=error), attempt, self._clock())

    async def _execute(self, job: Job, *, attempt: int, final: bool, published: datetime) -> _Outcome | Retry:
        decision = gate(self.catalog, job.tier, job.ref.requested_model)
        if isinstance(decision, Denied):
            # The gate quotes the job's tier or model, which may repeat its prompt (docs/contract.md §11).
            redact = Redactor((job.system_prompt, job.user_message))
            return _rejected(ErrorCode(decision.code), redact(decision.message, limit=None))
        model = decision.model
        max_tokens = model.output_tokens(job.max_tokens)
        if self.quotas is not None:
            refusal = await self._reserve(job, decision.tier, model, max_tokens, attempt, published)
            if refusal is not None:
                return refusal
        provider = self.providers.get(model.provider)
        if provider is None:
            error = ResultError(
                code=ErrorCode.PROVIDER_NOT_CONFIGURED,
                message=f"No {model.provider} provider is configured for model {model.id}.",
                retryable=False,
            )
            return _Outcome("failed", model, error=error)
        request = ProviderRequest(
            model=model.provider_model,
            system_prompt=job.system_prompt,
            user_message=job.user_message,
            max_tokens=max_tokens,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + job.timeout_secs
        try:
            async with asyncio.timeout_at(deadline):
                reply = await call_with_retry(provider, request, deadline=deadline, policy=self.retry)
        except TimeoutError:
            error = ResultError(
                code=ErrorCode.TIMEOUT,
                message=f"The provider did not answer within the job's {job.timeout_secs} s.",
                retryable=False,
            )
            return _Outcome("timed_out", model, error=error)
        except ProviderError as exc:
            if exc.retryable and not final:
                return Retry(max(self.retry.redelivery_delay(attempt), exc.retry_after or 0.0), exc)
            error = ResultError(code=exc.code, message=exc.message, retryable=exc.retryable)
            return _Outcome("failed", model, error=error, usage=exc.usage or Usage())
        return _Outcome("completed", model, text=reply.text, stop_reason=reply.stop_reason, usage=reply.usage)

    async def _reserve(
        self, job: Job, tier: TierSpec, model: ModelSpec, max_tokens: int, attempt: int, published: datetime
    ) -> _Outcome | None:
        """Hold the run's most possible bill in its user's month; a `quota_exceeded` outcome when it does not fit."""
        assert self.quotas is not None
        amount = most_possible_bill(
            system_prompt=job.system_prompt,
            user_message=job.user_message,
            max_output_tokens=max_tokens,
            multiplier=model.multiplier,
        )
        if amount == 0:
            return None  # never refused, and nothing to hold
        charge = Charge(job.user_id, job.ref.run_id, published, tier.name, amount, tier.monthly_quota, attempt)
        refused = (await self.quotas.reserve(charge)).refused
        if tracing.enabled:
            tracing.event(
                "quota.reserved", {"maschina.quota.tokens": tracing.count(amount), "maschina.quota.refused": refused}
            )
        if not refused:
            return None
        # Exhaustion suspends; it never degrades to a cheaper model. The numbers are the user's own.
        return _rejected(
            ErrorCode.QUOTA_EXCEEDED,
            f"The monthly quota of the {tier.name} plan ({tier.monthly_quota:,} billed tokens) has no room for "
            f"this run, which may bill up to {amount:,} tokens.",
        )

    def _result(self, ref: RunRef, outcome: _Outcome, attempt: int, started: datetime) -> RunResult:
        finished = self._clock()
        completed = outcome.status == "completed"
        model = outcome.model
        multiplier = model.multiplier if model is not None else Decimal(0)
        return RunResult(
            job_id=ref.job_id,
            run_id=ref.run_id,
            agent_id=ref.agent_id,
            user_id=ref.user_id,
            tier=ref.tier,
            status=outcome.status,
            requested_model=ref.requested_model,
            model=model.id if model is not None else None,
            provider=model.provider if model is not None else None,
            output_payload={"text": outcome.text} if completed else None,
            stop_reason=outcome.stop_reason if completed else None,
            usage=ResultUsage.of(outcome.usage),
            billing=ResultBilling.of(bill(outcome.usage, multiplier)),
            error=outcome.error,
            attempt=attempt,
            worker_id=self.worker_id,
            started_at=started,
            finished_at=finished,
            duration_ms=max(0, round((finished - started).total_seconds() * 1000)),
        )


def _rejected(code: ErrorCode, message: str) -> _Outcome:
    return _Outcome("rejected", error=ResultError(code=code, message=message, retryable=False))
