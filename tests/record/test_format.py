"""The recorded-message line format and how `replay` reads it: bodies byte for byte, headers kept."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testkit.jobs import example_job
from tests.replay.support import replay_cli
from worker.payloads import read_payloads
from worker.recorded_jobs import RecordedMessage, RecordingLineError, decode_recorded, encode_recorded

pytestmark = pytest.mark.unit

KEY = "replay-signing-key"
BODIES = [
    orjson.dumps(example_job(runId="text-body")),
    b"\xef\xbb\xbf{}",  # a byte-order mark is valid UTF-8: kept as text
    b"\xff\xfe\x00 not UTF-8 \x80",
    b"",
    b'{"runId": "spaced" ,\n "tier" : "m1"}',
]


def signature(body: bytes, key: str = KEY) -> str:
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize("body", BODIES)
def test_a_line_gives_back_the_body_byte_for_byte_and_the_headers(body: bytes) -> None:
    headers = {"Maschina-Signature": signature(body), "X-Empty": "", "X-Odd": "é \x7f"}
    line = encode_recorded(RecordedMessage("maschina.jobs.agent.agent.execute", body, headers))

    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    parsed = orjson.loads(line)
    assert ("body" in parsed) != ("bodyBase64" in parsed)
    assert ("bodyBase64" in parsed) == (body == BODIES[2])
    decoded = decode_recorded(parsed)
    assert decoded is not None
    assert (decoded.subject, decoded.body, decoded.headers) == ("maschina.jobs.agent.agent.execute", body, headers)


def test_a_job_body_is_not_a_recording_and_a_marked_line_with_bad_fields_is_an_error() -> None:
    assert decode_recorded(example_job()) is None
    assert decode_recorded({"format": "something else", "body": "{}"}) is None
    marked = {"format": "agent-worker.recorded-job.v1", "subject": "s"}
    for fields in ({}, {"body": "{}", "bodyBase64": "e30="}, {"bodyBase64": "not base64!"}, {"body": 1}):
        with pytest.raises(RecordingLineError):
            decode_recorded({**marked, **fields})
    with pytest.raises(RecordingLineError):
        decode_recorded({**marked, "body": "{}", "headers": {"a": 1}})


def test_recorded_lines_job_bodies_and_arrays_mix_in_the_files_replay_reads(tmp_path: Path) -> None:
    recorded = [RecordedMessage("subject", body, {"h": str(i)}) for i, body in enumerate(BODIES)]
    jsonl = tmp_path / "mixed.jsonl"
    jsonl.write_bytes(encode_recorded(recorded[0]) + b'{"runId": "plain"}\n' + encode_recorded(recorded[2]))
    array = tmp_path / "array.json"
    array.write_bytes(orjson.dumps([orjson.loads(encode_recorded(recorded[1])), {"runId": "plain"}]))
    single = tmp_path / "single.json"
    single.write_bytes(encode_recorded(recorded[4]))

    assert [(p.body, p.headers, p.source) for p in read_payloads(jsonl)] == [
        (BODIES[0], {"h": "0"}, f"{jsonl}:1"),
        (b'{"runId": "plain"}', None, f"{jsonl}:2"),
        (BODIES[2], {"h": "2"}, f"{jsonl}:3"),
    ]
    assert [(p.body, p.headers) for p in read_payloads(array)] == [
        (BODIES[1], {"h": "1"}),
        (b'{"runId":"plain"}', None),
    ]
    assert [(p.body, p.headers) for p in read_payloads(single)] == [(BODIES[4], {"h": "4"})]


def test_a_bad_recorded_line_stops_replay_naming_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_bytes(encode_recorded(RecordedMessage("s", b"{}")) + b'{"format":"agent-worker.recorded-job.v1"}\n')

    replayed = replay_cli(capsys, path)

    assert replayed.code == 2
    assert f"{path}:2" in replayed.stderr


def test_replay_checks_recorded_signatures_as_on_the_wire(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    good, forged, unsigned = (orjson.dumps(example_job(runId=run)) for run in ("good", "forged", "unsigned"))
    path = tmp_path / "signed.jsonl"
    path.write_bytes(
        encode_recorded(
            RecordedMessage("s", good, {"Maschina-Signature": signature(good).upper().replace("SHA", "sha")})
        )
        + encode_recorded(RecordedMessage("s", forged, {"Maschina-Signature": signature(forged, "another key")}))
        + encode_recorded(RecordedMessage("s", unsigned, {}))
        + unsigned
        + b"\n"
    )

    monkeypatch.setenv("WORKER_SIGNING_KEY", KEY)
    signed = replay_cli(capsys, path)
    monkeypatch.delenv("WORKER_SIGNING_KEY")
    unchecked = replay_cli(capsys, path)

    assert signed.code == 0
    assert [r["runId"] for r in signed.results] == ["good"]
    assert [(d["source"], d["reason"]) for d in signed.dead_letters] == [
        (f"{path}:2", "bad_signature"),
        (f"{path}:3", "bad_signature"),
        (f"{path}:4", "bad_signature"),
    ]
    assert [r["runId"] for r in unchecked.results] == ["good", "forged", "unsigned", "unsigned"]


header_text = st.text(st.characters(codec="utf-8"), max_size=20)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=200), headers=st.none() | st.dictionaries(header_text, header_text, max_size=4))
def test_any_body_and_headers_come_back_as_they_went_in(body: bytes, headers: dict[str, str] | None) -> None:
    decoded = decode_recorded(orjson.loads(encode_recorded(RecordedMessage("subject", body, headers))))
    assert decoded is not None
    assert (decoded.body, decoded.headers) == (body, headers)
