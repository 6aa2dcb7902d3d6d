"""Model providers behind one protocol, one error table and one retry policy (contract sections 4 and 7)."""

from worker.providers.anthropic import AnthropicProvider
from worker.providers.base import Provider, ProviderError, ProviderReply, ProviderRequest
from worker.providers.ollama import OllamaProvider
from worker.providers.registry import build_providers, close_providers
from worker.providers.retry import RetryPolicy, call_with_retry

__all__ = [
    "AnthropicProvider",
    "OllamaProvider",
    "Provider",
    "ProviderError",
    "ProviderReply",
    "ProviderRequest",
    "RetryPolicy",
    "build_providers",
    "call_with_retry",
    "close_providers",
]
