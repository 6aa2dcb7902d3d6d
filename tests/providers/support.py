"""What the provider tests share: the key, the prompts and request they send, and a provider paired with its fake."""

from __future__ import annotations

from dataclasses import dataclass

from testkit import FakeServer
from worker.providers import Provider, ProviderRequest

__all__ = ["API_KEY", "REQUEST", "SYSTEM_PROMPT", "USER_MESSAGE", "Harness"]

API_KEY = "sk-ant-test-0123456789-do-not-leak"
SYSTEM_PROMPT = "SYSTEM-PROMPT-TEXT You are terse."
USER_MESSAGE = "USER-PROMPT-TEXT Summarise the notes."
REQUEST = ProviderRequest(
    model="claude-sonnet-4-6", system_prompt=SYSTEM_PROMPT, user_message=USER_MESSAGE, max_tokens=64
)


@dataclass(frozen=True, slots=True)
class Harness:
    """A provider pointed at its fake, so one test body can run against both providers."""

    fake: FakeServer
    provider: Provider
