"""The providers a worker runs with, built once from its settings and keyed by the catalog's provider names."""

from __future__ import annotations

import structlog

from worker.providers.base import Provider
from worker.providers.ollama import OllamaProvider
from worker.settings import Settings

__all__ = ["build_providers", "close_providers"]

_log = structlog.get_logger(__name__)


def build_providers(settings: Settings, *, concurrency: int | None = None) -> dict[str, Provider]:
    """One provider per configured backend, each pooled for `concurrency` calls (default `WORKER_CONCURRENCY`).

    Anthropic is left out when `ANTHROPIC_API_KEY` is unset, OpenAI when `OPENAI_API_KEY` is: the pipeline
    answers a model whose provider is missing with `provider_not_configured`, and that is the only place
    that does.
    Ollama needs no key, so it is always there.
    """
    pool = settings.concurrency if concurrency is None else concurrency
    providers: dict[str, Provider] = {"ollama": OllamaProvider(host=settings.ollama_host, concurrency=pool)}
    if settings.anthropic_api_key is not None:
        # Imported here: the SDK costs over a second of CPU to import, and a worker without a key never uses it.
        from worker.providers.anthropic import AnthropicProvider

        providers["anthropic"] = AnthropicProvider(
            api_key=settings.anthropic_api_key.get_secret_value(),
            base_url=settings.anthropic_base_url,
            concurrency=pool,
        )
    if settings.openai_api_key is not None:
        # Imported here for the same reason: the SDK costs over half a second of CPU to import.
        from worker.providers.openai import OpenAIProvider

        providers["openai"] = OpenAIProvider(
            api_key=settings.openai_api_key.get_secret_value(),
            base_url=settings.openai_base_url,
            concurrency=pool,
        )
    return providers


async def close_providers(providers: dict[str, Provider]) -> None:
    """Close every provider's connection pool; one failing to close does not keep the others open."""
    for provider in providers.values():
        try:
            await provider.aclose()
        except Exception as exc:
            _log.warning("provider_close_failed", provider=provider.name, error=type(exc).__name__)
