"""Job bodies read from files, for `replay` and `demo`: a JSON document (one object or an array) or JSONL.

A file whose whole text is one JSON object is one job body, passed to the door byte for byte. A JSON
array is one body per element. JSONL — a first line that is JSON by itself with more lines after it,
or any file that is not one JSON document — is one body per non-blank line, byte for byte, so a
malformed line reaches the door as it is and is dead-lettered like on the wire. `-` is stdin.

Wherever a body may stand, a recorded message (`worker.recorded_jobs`, written by `agent-worker record`)
may stand instead: its body is taken byte for byte, and its headers come with it, so the door checks a
signature as it would on the wire.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson

from worker.recorded_jobs import MARKER, RecordingLineError, decode_recorded

__all__ = ["Payload", "read_payloads"]

_NON_SPACE = re.compile(rb"\S")


@dataclass(frozen=True, slots=True)
class Payload:
    body: bytes
    source: str
    """Where the body came from: `file`, `file[index]` for an array element, `file:line` for JSONL."""
    headers: Mapping[str, str] | None = None
    """The NATS headers of a recorded message; None for a plain job body."""


def read_payloads(path: Path) -> Iterator[Payload]:
    """The job bodies in `path`; raises `OSError` when it cannot be read, `RecordingLineError` for a bad record."""
    name = str(path)
    data = sys.stdin.buffer.read() if name == "-" else path.read_bytes()
    document = _whole_document(data)
    if isinstance(document, dict):
        yield _recorded(document, name) or Payload(data.strip(), name)
    elif isinstance(document, list):
        for index, element in enumerate(document):
            source = f"{name}[{index}]"
            yield _recorded(element, source) or Payload(orjson.dumps(element), source)
    else:
        for number, line in enumerate(data.splitlines(), start=1):
            if line.strip():
                source = f"{name}:{number}"
                # Only a line holding the format marker is parsed here; every other line goes to the door as it is.
                yield (_recorded(_parsed(line), source) if MARKER in line else None) or Payload(line, source)


def _recorded(document: object, source: str) -> Payload | None:
    try:
        message = decode_recorded(document)
    except RecordingLineError as exc:
        raise RecordingLineError(f"{source}: {exc}") from None
    return None if message is None else Payload(message.body, source, message.headers)


def _parsed(line: bytes) -> object:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return None


def _whole_document(data: bytes) -> object:
    """The file parsed as one JSON document, or None when it is not one (then it is read as JSONL).

    A first line that is complete JSON by itself, with more after it, means JSONL: the whole file is
    then not parsed, which for a large file would cost several times its size in memory.
    """
    # Searched in place: slicing or stripping a large file would copy it.
    first = _NON_SPACE.search(data)
    start = 0 if first is None else first.start()
    end = data.find(b"\n", start)
    if end != -1 and _NON_SPACE.search(data, end) is not None:
        try:
            orjson.loads(data[start:end])
        except orjson.JSONDecodeError:
            pass
        else:
            return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
