"""A provider's stop reason and model name reach the result and the call span without the job's prompt
(docs/contract.md §11): the stop reason passes through (§4), scrubbed like a provider's error text."""

from __future__ import annotations

import pytest

from catalog import Usage, default_catalog
from worker.job import Job, RunRef
from worker.pipeline import Pipeline
from worker.providers.base import ProviderReply, ProviderRequest
from worker.providers.redaction import WINDOW, scrubbed_reply
from worker.result import RunResult

pytestmark = pytest.mark.unit

SYSTEM = "You are Scout, a research agent of the Maschina fleet; answer tersely."
MESSAGE = "Summarise the attached quarterly notes for the board, in five bullet points."


class EchoingProvider:
    """Answers with a stop reason and model name that quote the prompt, as a hostile or broken server might."""

    name = "anthropic"

    def __init__(self, stop_reason: str | None, model: str | None = None) -> None:
        self.stop_reason = stop_reason
        self.model = model

    async def complete(self, request: ProviderRequest) -> ProviderReply:
        return ProviderReply(text="ok", stop_reason=self.stop_reason, usage=Usage(3, 4), model=self.model)

    async def aclose(self) -> None:
        return None


def _job() -> Job:
    ref = RunRef("run-1", None, "agent-1", "user-1", "m5", None, None)
    return Job(ref, "agent-1", "user-1", "m5", SYSTEM, MESSAGE, timeout_secs=30, max_tokens=100)


async def _stop_reason_of(provider: EchoingProvider) -> str | None:
    pipeline = Pipeline(catalog=default_catalog(), providers={"anthropic": provider}, worker_id="w")
    result = await pipeline.run(_job())
    assert isinstance(result, RunResult)
    assert result.status == "completed"
    return result.stop_reason


def _shares_a_window(text: str) -> bool:
    return any(text[i : i + WINDOW] in SYSTEM + "\n" + MESSAGE for i in range(len(text) - WINDOW + 1))


@pytest.mark.parametrize("quoted", [MESSAGE, SYSTEM[5:40], f"stop: {MESSAGE[10:60]}"])
async def test_a_stop_reason_quoting_the_prompt_is_scrubbed(quoted: str) -> None:
    stop_reason = await _stop_reason_of(EchoingProvider(quoted))
    assert stop_reason is not None
    assert not _shares_a_window(stop_reason)


@pytest.mark.parametrize("reason", ["end_turn", "max_tokens", "tool_use", "pause_turn", "refusal", None])
async def test_ordinary_stop_reasons_pass_through(reason: str | None) -> None:
    assert await _stop_reason_of(EchoingProvider(reason)) == reason


def test_the_model_name_for_the_span_is_scrubbed_too() -> None:
    request = ProviderRequest("claude-sonnet-4-6", SYSTEM, MESSAGE, 100)
    reply = ProviderReply(text=MESSAGE, stop_reason="end_turn", usage=Usage(1, 2), model=MESSAGE[:40])
    scrubbed = scrubbed_reply(reply, request)
    assert scrubbed.model is not None
    assert not _shares_a_window(scrubbed.model)
    # The model's own answer is the one text that may hold the prompt.
    assert (scrubbed.text, scrubbed.stop_reason, scrubbed.usage) == (MESSAGE, "end_turn", Usage(1, 2))
    plain = ProviderReply(text="x", stop_reason="end_turn", usage=Usage(), model="claude-sonnet-4-6-20260101")
    assert scrubbed_reply(plain, request) is plain
