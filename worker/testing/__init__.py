"""Fake model providers that speak the real APIs on loopback, shipped for tests, benchmarks and fault runs.

- `FakeAnthropic`: `POST /v1/messages`; `FakeOpenAI`: `POST /v1/chat/completions`; `FakeOllama`: `POST /api/chat`
  (NDJSON or single object).
- `FakeConfig` steers them (delay, random faults, down, known models, key); `Step` scripts the next answers.
- In-process they are async context managers with `.url`, `.stats`, `.requests`, `.script()`, `.wait_until()`,
  `.pause()`/`.resume()`; `FakeProcess` runs one as a child process steered over `/_fake/*`.
"""

from worker.testing._fake import FakeConfig, FakeServer, FakeStats, RecordedRequest, Step
from worker.testing.anthropic_server import FakeAnthropic
from worker.testing.ollama_server import FakeOllama
from worker.testing.openai_server import FakeOpenAI
from worker.testing.process import FakeProcess

__all__ = [
    "FakeAnthropic",
    "FakeConfig",
    "FakeOllama",
    "FakeOpenAI",
    "FakeProcess",
    "FakeServer",
    "FakeStats",
    "RecordedRequest",
    "Step",
]
