"""Development tooling shared by tests/ and bench/: never installed, never in the wheel or the image.

This package: fake model providers that speak the real APIs on loopback. Beside it: `testkit.process` (child
processes: worker replicas, fakes in their own process, harnesses), `testkit.jobs` (job bodies as the API
publishes them), `testkit.streams` (the worker's streams created ahead of it) and `testkit.otlp` (an OTLP/HTTP
trace receiver that decodes what the worker exports).

- `FakeAnthropic`: `POST /v1/messages`; `FakeOpenAI`: `POST /v1/chat/completions`; `FakeOllama`: `POST /api/chat`
  (NDJSON or single object).
- `FakeConfig` steers them (delay, random faults, down, known models, key); `Step` scripts the next answers.
- In-process they are async context managers with `.url`, `.stats`, `.requests`, `.script()`, `.wait_until()`,
  `.pause()`/`.resume()`; `testkit.process.FakeProcess` runs one as a child process steered over `/_fake/*`.
"""

from testkit._fake import FakeConfig, FakeServer, FakeStats, ReceivedRequest, Step
from testkit.anthropic_server import FakeAnthropic
from testkit.ollama_server import FakeOllama
from testkit.openai_server import FakeOpenAI

__all__ = [
    "FakeAnthropic",
    "FakeConfig",
    "FakeOllama",
    "FakeOpenAI",
    "FakeServer",
    "FakeStats",
    "ReceivedRequest",
    "Step",
]
