"""A provider's `retry-after` read as a wait (docs/contract.md §7): what is not a finite number of seconds is no hint.

An infinite wait would become an infinite nak delay, which the NATS client cannot send (OverflowError): the
job's delivery would end as a crash instead of the contract's nak.
"""

from __future__ import annotations

from email.utils import formatdate

import pytest

from worker.providers.classify import MAX_RETRY_AFTER_SECS, parse_retry_after

pytestmark = pytest.mark.unit

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        pytest.param({"retry-after": "7"}, 7.0, id="seconds"),
        pytest.param({"retry-after": "1.5"}, 1.5, id="fraction"),
        pytest.param({"retry-after-ms": "250"}, 0.25, id="millis"),
        pytest.param({"retry-after": "-3"}, 0.0, id="negative-is-now"),
        pytest.param({"retry-after": formatdate(NOW + 10, usegmt=True)}, 10.0, id="http-date"),
        pytest.param({"retry-after": "inf"}, None, id="inf"),
        pytest.param({"retry-after": "Infinity"}, None, id="Infinity"),
        pytest.param({"retry-after": "1e400"}, None, id="beyond-a-double"),
        pytest.param({"retry-after": "nan"}, None, id="nan"),
        pytest.param({"retry-after-ms": "inf", "retry-after": "4"}, 4.0, id="bad-millis-falls-back"),
        pytest.param({"retry-after-ms": "nan"}, None, id="nan-millis"),
        pytest.param({"retry-after": "1e9"}, MAX_RETRY_AFTER_SECS, id="years-capped"),
        pytest.param({"retry-after-ms": "9.3e15"}, MAX_RETRY_AFTER_SECS, id="millis-capped"),
        pytest.param({"retry-after": formatdate(NOW + 10**9, usegmt=True)}, MAX_RETRY_AFTER_SECS, id="date-capped"),
    ],
)
def test_retry_after(headers: dict[str, str], wait: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == wait
