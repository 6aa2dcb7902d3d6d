"""The retry policy from the environment (`WORKER_RETRY_*`, `WORKER_REDELIVERY_*`): parsed, refused, and used."""

from __future__ import annotations

import orjson
import pytest
from nats.aio.client import Client

from tests.worker.fakes import FakeProvider
from tests.worker.support import Listener, job, publish_job, worker_settings
from worker.cli import main
from worker.contract import ErrorCode
from worker.embedded import NatsServer
from worker.providers.base import ProviderError
from worker.providers.retry import RetryPolicy
from worker.service import Worker
from worker.settings import Settings, SettingsError

pytestmark = pytest.mark.nats


def test_unset_retry_settings_give_the_default_policy() -> None:
    settings = Settings.from_env({})
    assert settings.retry_policy() == RetryPolicy()
    assert Worker(settings).retry == RetryPolicy()


def test_retry_settings_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "WORKER_RETRY_BASE_SECS": "0.25",
            "WORKER_RETRY_CAP_SECS": "4",
            "WORKER_RETRY_MAX_CALLS": "3",
            "WORKER_REDELIVERY_BASE_SECS": "2.5",
            "WORKER_REDELIVERY_CAP_SECS": "600",
        }
    )
    expected = RetryPolicy(base=0.25, cap=4.0, max_calls=3, redelivery_base=2.5, redelivery_cap=600.0)
    assert settings.retry_policy() == expected
    assert Worker(settings).retry == expected


def test_an_explicit_policy_overrides_the_settings() -> None:
    fast = RetryPolicy(base=0.01, cap=0.02, max_calls=1)
    assert Worker(Settings.from_env({"WORKER_RETRY_MAX_CALLS": "9"}), retry=fast).retry is fast


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"WORKER_RETRY_BASE_SECS": "0"}, "WORKER_RETRY_BASE_SECS"),
        ({"WORKER_RETRY_BASE_SECS": "-1"}, "WORKER_RETRY_BASE_SECS"),
        ({"WORKER_RETRY_BASE_SECS": "nan"}, "WORKER_RETRY_BASE_SECS"),
        ({"WORKER_RETRY_CAP_SECS": "inf"}, "WORKER_RETRY_CAP_SECS"),
        ({"WORKER_RETRY_MAX_CALLS": "0"}, "WORKER_RETRY_MAX_CALLS"),
        ({"WORKER_RETRY_MAX_CALLS": "2.5"}, "WORKER_RETRY_MAX_CALLS"),
        ({"WORKER_REDELIVERY_BASE_SECS": "soon"}, "WORKER_REDELIVERY_BASE_SECS"),
        ({"WORKER_REDELIVERY_CAP_SECS": "0"}, "WORKER_REDELIVERY_CAP_SECS"),
        # A cap below its base, given explicitly or by leaving the cap at its default.
        ({"WORKER_RETRY_BASE_SECS": "2", "WORKER_RETRY_CAP_SECS": "1"}, "WORKER_RETRY_CAP_SECS"),
        ({"WORKER_REDELIVERY_BASE_SECS": "300"}, "WORKER_REDELIVERY_CAP_SECS"),
    ],
)
def test_bad_retry_setting_is_refused_naming_it(environ: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(environ)


def test_cap_below_base_stops_run_with_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WORKER_REDELIVERY_BASE_SECS", "10")
    monkeypatch.setenv("WORKER_REDELIVERY_CAP_SECS", "5")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "WORKER_REDELIVERY_CAP_SECS" in err
    assert "WORKER_REDELIVERY_BASE_SECS" in err


async def test_worker_naks_with_the_configured_redelivery_delay(nats_server: NatsServer, client: Client) -> None:
    # Every ack, nak and in-progress the worker sends goes to the message's $JS.ACK subject; listen there too.
    acks = await Listener("$JS.ACK.>").open(client)
    overloaded = ProviderError(ErrorCode.PROVIDER_UNAVAILABLE, "overloaded", retryable=True)
    flaky = FakeProvider(errors=[overloaded])
    # One call per delivery, so the first error is handed straight back; the delay is far from the default 5 s.
    settings = worker_settings(nats_server, retry_max_calls=1, redelivery_base_secs=7.5, redelivery_cap_secs=60)
    worker = Worker(settings, providers={"anthropic": flaky})
    await worker.start()
    try:
        await publish_job(client, job())
        while not (message := await acks.next()).data.startswith(b"-NAK"):
            pass
    finally:
        await worker.stop()

    assert orjson.loads(message.data.removeprefix(b"-NAK ")) == {"delay": 7_500_000_000}
    assert len(flaky.calls) == 1
