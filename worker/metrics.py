"""The worker's Prometheus metrics: every name the dashboards and alerts may rely on is defined here."""

from __future__ import annotations

from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]

M = TypeVar("M", Counter, Histogram)

# LLM calls take seconds; the low buckets still show the worker's own overhead on rejected jobs.
# A quota change is a key-value read and a compare-and-set write: a millisecond or so, more under contention.
_QUOTA_SECONDS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_SECONDS = (0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class Metrics:
    """One set per worker, on its own registry so tests and several workers in a process never collide.

    Label values are bounded: tiers and models outside the catalog are counted as `unknown`.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.jobs = Counter(
            "agent_worker_jobs",
            "Results stored, by status, model and tier",
            ["status", "model", "tier"],
            registry=r,
        )
        self.billed_tokens = Counter(
            "agent_worker_billed_tokens", "Billed tokens in stored results", ["model", "tier"], registry=r
        )
        self.job_duration = Histogram(
            "agent_worker_job_duration_seconds",
            "From job received to result stored",
            ["status"],
            buckets=_SECONDS,
            registry=r,
        )
        self.provider_latency = Histogram(
            "agent_worker_provider_latency_seconds",
            "One provider call, retries excluded",
            ["provider", "model"],
            buckets=_SECONDS,
            registry=r,
        )
        self.provider_errors = Counter(
            "agent_worker_provider_errors",
            "Failed provider calls by error code",
            ["provider", "code"],
            registry=r,
        )
        self.in_flight = Gauge("agent_worker_jobs_in_flight", "Jobs being processed by this replica", registry=r)
        self.redeliveries = Counter(
            "agent_worker_redeliveries", "Job messages received with a delivery count above 1", registry=r
        )
        self.duplicates = Counter(
            "agent_worker_duplicate_jobs", "Jobs whose run already had a stored result", registry=r
        )
        self.naks = Counter("agent_worker_naks", "Jobs handed back for a later retry", ["code"], registry=r)
        self.dead_letters = Counter(
            "agent_worker_dead_letters", "Jobs dead-lettered, by reason", ["reason"], registry=r
        )
        self.quota_refusals = Counter(
            "agent_worker_quota_refusals", "Jobs refused with quota_exceeded, by tier", ["tier"], registry=r
        )
        self.quota_conflicts = Counter(
            "agent_worker_quota_cas_conflicts",
            "Usage bucket writes refused because another writer changed the key first, or whose answer was lost "
            "(then read again and retried)",
            registry=r,
        )
        self.quota_reserve_latency = Histogram(
            "agent_worker_quota_reserve_seconds",
            "Reserving a run's most possible bill, conflicts and retries included",
            buckets=_QUOTA_SECONDS,
            registry=r,
        )
        self.quota_settle_latency = Histogram(
            "agent_worker_quota_settle_seconds",
            "Settling a run's bill once its result is stored, conflicts and retries included",
            buckets=_QUOTA_SECONDS,
            registry=r,
        )
        self.nats_disconnects = Counter("agent_worker_nats_disconnects", "Disconnects from NATS", registry=r)
        self._children: dict[tuple[object, ...], object] = {}

    def child(self, metric: M, *values: object) -> M:
        """`metric.labels(*values)` (values in the metric's label order), looked up once per set of values.

        prometheus_client's `labels()` validates and locks on every call; the hot path asks for the same
        few children on every job, and label values are bounded, so each child is kept.
        """
        key = (metric, *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child  # type: ignore[return-value]
