"""The cloud providers T2 and T3 measure: each one's worker against its bare SDK, behind its own fake process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["ANTHROPIC", "OPENAI", "PROVIDERS", "BenchProvider", "ProviderName"]

ProviderName = Literal["anthropic", "openai"]


@dataclass(frozen=True, slots=True)
class BenchProvider:
    name: ProviderName
    """The catalog's provider name, which is also the fake's kind (`FakeProcess(name)`)."""
    label: str
    """How rows name it."""
    model: str
    """The model of the benchmark jobs: one an m5 customer may use (the example job's tier)."""
    env_prefix: str
    """Of the SDK's own variables, `<prefix>_API_KEY` and `<prefix>_BASE_URL`."""
    api_root: str
    """What the SDK's base URL adds to the fake's address."""

    def base_url(self, fake_url: str) -> str:
        return fake_url + self.api_root

    def env(self, fake_url: str) -> dict[str, str]:
        """A replica's settings pointing this provider at the fake."""
        return {f"{self.env_prefix}_API_KEY": "test", f"{self.env_prefix}_BASE_URL": self.base_url(fake_url)}


ANTHROPIC = BenchProvider("anthropic", "Anthropic", "claude-sonnet-4-6", "ANTHROPIC", "")
OPENAI = BenchProvider("openai", "OpenAI", "gpt-5", "OPENAI", "/v1")
PROVIDERS: dict[ProviderName, BenchProvider] = {provider.name: provider for provider in (ANTHROPIC, OPENAI)}
