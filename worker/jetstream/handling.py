"""What takes a job message to its stored outcome, shared by the job consumer and the max-deliveries path."""

from __future__ import annotations

from dataclasses import dataclass

from worker.door import Door
from worker.jetstream.deadletter import DeadLetters
from worker.jetstream.recorder import Recorder
from worker.metrics import Metrics
from worker.pipeline import Pipeline

__all__ = ["JobHandling"]


@dataclass(frozen=True, slots=True)
class JobHandling:
    """The door reads the job, the pipeline runs it, the recorder stores its result, dead letters take the rest."""

    door: Door
    pipeline: Pipeline
    recorder: Recorder
    dead_letters: DeadLetters
    metrics: Metrics
