"""Reading job bodies from files: one JSON document, a JSON array, or JSONL, told apart without parsing twice."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from worker.payloads import Payload, read_payloads

pytestmark = pytest.mark.unit

JOB = {"runId": "r1", "tier": "m1"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A pretty-printed object is one body, byte for byte (surrounding whitespace aside).
        (orjson.dumps(JOB, option=orjson.OPT_INDENT_2) + b"\n", [orjson.dumps(JOB, option=orjson.OPT_INDENT_2)]),
        # A pretty-printed array: one body per element.
        (orjson.dumps([JOB, 7], option=orjson.OPT_INDENT_2), [orjson.dumps(JOB), b"7"]),
        # JSONL: a line per body, blank lines skipped, a broken line kept as it is (the door dead-letters it).
        (b'{"a":1}\n\n{broken\n[1]\n', [b'{"a":1}', b"{broken", b"[1]"]),
        # JSONL whose first line is broken is still JSONL.
        (b'{broken\n{"a":1}\n', [b"{broken", b'{"a":1}']),
        # One line, not JSON: one body, for the door to refuse.
        (b"\xef\xbb\xbf{}", [b"\xef\xbb\xbf{}"]),
    ],
)
def test_a_file_is_read_as_a_document_or_as_lines(tmp_path: Path, text: bytes, expected: list[bytes]) -> None:
    path = tmp_path / "jobs.json"
    path.write_bytes(text)

    assert [payload.body for payload in read_payloads(path)] == expected


def test_sources_name_the_file_the_element_or_the_line(tmp_path: Path) -> None:
    array, lines = tmp_path / "a.json", tmp_path / "l.jsonl"
    array.write_bytes(orjson.dumps([JOB, JOB]))
    lines.write_bytes(b"{}\n\n{}\n")

    assert [p.source for p in read_payloads(array)] == [f"{array}[0]", f"{array}[1]"]
    assert [p.source for p in read_payloads(lines)] == [f"{lines}:1", f"{lines}:3"]
    assert next(read_payloads(array)) == Payload(orjson.dumps(JOB), f"{array}[0]")
