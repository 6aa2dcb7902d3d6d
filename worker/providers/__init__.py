"""Model providers behind one protocol, one error table and one retry policy (docs/contract.md §4, §7).

Only the light names live here: every `worker.*` import runs this file (the pipeline imports
`worker.providers.base`), and the anthropic SDK alone costs over a second of CPU to import. The
providers themselves come from their modules (`worker.providers.ollama`, `.anthropic`, `.registry`),
and `build_providers` imports the SDK only when a key is configured.
"""

from worker.providers.base import Provider, ProviderError, ProviderReply, ProviderRequest
from worker.providers.retry import RetryPolicy, call_with_retry

__all__ = [
    "Provider",
    "ProviderError",
    "ProviderReply",
    "ProviderRequest",
    "RetryPolicy",
    "call_with_retry",
]
