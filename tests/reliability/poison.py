"""Hostile job bodies, each with the outcome the contract prescribes (sections 2 and 7).

`hostile()` is the hand-written corpus: broken JSON, wrong types, huge strings, deep nesting, invalid
UTF-8, subject-unsafe run ids, forged signatures, and odd-but-valid jobs that must complete.
`fuzzed()` mutates valid envelopes at random (seeded); their outcome is whatever the door decides.
Every body is unique, so a dead letter is matched to its message by its body.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from dataclasses import dataclass, field

import orjson

from tests.reliability.traffic import envelope

__all__ = ["SIGNING_KEY", "Poison", "fuzzed", "hostile", "sign"]

SIGNING_KEY = b"reliability-suite-signing-key"


def sign(body: bytes, key: bytes = SIGNING_KEY) -> str:
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Poison:
    """`expected` is `dlq:<reason>`, `rejected:<code>`, `completed`, or `door` (whatever the door says)."""

    label: str
    body: bytes
    expected: str
    headers: dict[str, str] = field(default_factory=dict)
    run_id: str | None = None


def _job(run_id: str, **changes: object) -> bytes:
    """A valid envelope with `changes` applied to its data; a change to `None` removes the field."""
    body = envelope(run_id)
    for name, value in changes.items():
        if value is None:
            body["data"].pop(name, None)
        else:
            body["data"][name] = value
    return orjson.dumps(body)


def _signed(label: str, body: bytes, expected: str, run_id: str | None = None) -> Poison:
    return Poison(label, body, expected, {"Maschina-Signature": sign(body)}, run_id)


def _nested(depth: int, leaf: object = 1) -> object:
    value = leaf
    for _ in range(depth):
        value = {"x": value}
    return value


def hostile() -> list[Poison]:
    """At least fifty bodies, the outcome of each fixed by the contract rather than by the code under test."""
    items: list[Poison] = []

    def dead(label: str, body: bytes, reason: str) -> None:
        items.append(_signed(label, body, f"dlq:{reason}"))

    def job(label: str, expected: str, **changes: object) -> None:
        run_id = f"poison-{len(items):03d}"
        items.append(_signed(label, _job(run_id, **changes), expected, run_id))

    def raw_job(label: str, expected: str, make: bytes) -> None:
        items.append(_signed(label, make, expected, f"poison-{len(items):03d}"))

    # Not UTF-8 JSON.
    dead("empty body", b"", "not_json")
    dead("unterminated object", b'{"runId": "poison-open"', "not_json")
    dead("bare open brace", b"{", "not_json")
    dead("byte-order mark", b"\xef\xbb\xbf" + _job("poison-bom"), "not_json")
    dead("NaN", b'{"runId": "poison-nan", "timeoutSecs": NaN}', "not_json")
    dead("Infinity", b'{"runId": "poison-inf", "maxTokens": Infinity}', "not_json")
    dead("invalid UTF-8", b'{"runId": "poison-utf8", "agentId": "\xff\xfe\xfd"}', "not_json")
    dead("lone surrogate", b'{"runId": "poison-surrogate", "agentId": "\\ud800"}', "not_json")
    dead("2000 nested arrays", b"[" * 2000 + b"]" * 2000, "not_json")
    dead("1100 nested objects", b'{"a":' * 1100 + b"1" + b"}" * 1100, "not_json")
    dead("trailing garbage", b'{"runId": "poison-trailing"} and more', "not_json")
    dead("single quotes", b"{'runId': 'poison-quotes'}", "not_json")
    dead("control bytes", b"\x00\x01\x02\x03", "not_json")
    dead("random binary", random.Random(7).randbytes(512), "not_json")
    # JSON, but not an object.
    dead("null", b"null", "not_object")
    dead("empty array", b"[]", "not_object")
    dead("number", b"42", "not_object")
    dead("string", b'"maschina.jobs.agent.agent.execute"', "not_object")
    dead("true", b"true", "not_object")
    dead("array of a job", b"[" + _job("poison-in-array") + b"]", "not_object")
    # No run id.
    dead("empty object", b"{}", "no_run_id")
    dead("data without runId", _job("poison-x", runId=None), "no_run_id")
    dead("runId null", b'{"data": {"runId": null, "agentId": "a", "userId": "u", "tier": "m5"}}', "no_run_id")
    dead("runid in lower case", b'{"runid": "poison-lower", "agentId": "a", "userId": "u", "tier": "m5"}', "no_run_id")
    # Run ids that are not one safe subject token.
    for label, run_id in [
        ("runId with a dot", "poison.dot"),
        ("runId with a star", "poison-*"),
        ("runId >", ">"),
        ("runId with a space", "poison space"),
        ("runId empty", ""),
        ("runId of 129 chars", "p" * 129),
        ("runId non-ASCII", "poison-é"),
        ("runId with a newline", "poison\n1"),
        ("runId $JS API", "$JS.API.STREAM.DELETE.MASCHINA_JOBS"),
        ("runId with NUL", "poison\u0000"),
    ]:
        dead(label, orjson.dumps({"runId": run_id, "agentId": "a", "userId": "u", "tier": "m5"}), "bad_run_id")
    for label, value in [
        ("runId number", 42),
        ("runId array", ["x"]),
        ("runId object", {"x": 1}),
        ("runId true", True),
    ]:
        dead(label, orjson.dumps({"data": {"runId": value, "agentId": "a", "userId": "u", "tier": "m5"}}), "bad_run_id")
    # Wrong types and values: rejected with invalid_job.
    wrong_types: list[tuple[str, dict[str, object]]] = [
        ("agentId number", {"agentId": 42}),
        ("userId empty", {"userId": ""}),
        ("tier number", {"tier": 5}),
        ("timeoutSecs string", {"timeoutSecs": "300"}),
        ("timeoutSecs float", {"timeoutSecs": 300.0}),
        ("timeoutSecs true", {"timeoutSecs": True}),
        ("timeoutSecs 0", {"timeoutSecs": 0}),
        ("timeoutSecs 3601", {"timeoutSecs": 3601}),
        ("maxTokens 0", {"maxTokens": 0}),
        ("inputPayload string", {"inputPayload": "text"}),
        ("inputPayload array", {"inputPayload": ["text"]}),
        ("type other", {"type": "agent.delete"}),
        ("systemPrompt number", {"systemPrompt": 42}),
        ("model number", {"model": 42}),
        ("agentId missing", {"agentId": None}),
    ]
    for label, changes in wrong_types:
        job(label, "rejected:invalid_job", **changes)
    # Deeper than orjson writes (254 levels), so the body is spliced by hand; the door cannot render it as text.
    run_id = f"poison-{len(items):03d}"
    deep = _job(run_id, inputPayload={"message": "DEEP"}).replace(b'"DEEP"', b'{"x":' * 300 + b"1" + b"}" * 300)
    items.append(_signed("inputPayload nested 300 deep", deep, "rejected:invalid_job", run_id))
    run_id = f"poison-{len(items):03d}"
    huge = _job(run_id).replace(b'"maxTokens":256', b'"maxTokens":' + str(2**70).encode())
    # An integer of any size is an integer (docs/contract.md §2): lowered to the model's output cap, and run.
    items.append(_signed("maxTokens beyond 64 bits", huge, "completed", run_id))
    for label, reply_to in [
        ("replyTo JetStream API", "$JS.API.STREAM.DELETE.MASCHINA_JOBS"),
        ("replyTo our results", "maschina.results.agent.execute.victim"),
        ("replyTo wildcard", "_INBOX.*"),
        ("replyTo empty", ""),
        ("replyTo prefix alone", "_INBOX."),
        ("replyTo 300 chars", "_INBOX." + "x" * 300),
    ]:
        run_id = f"poison-{len(items):03d}"
        body = envelope(run_id, reply_to=reply_to)
        items.append(_signed(label, orjson.dumps(body), "rejected:invalid_job", run_id))
    # Too large, and the gate.
    job("message of 100,001 chars", "rejected:input_too_large", inputPayload={"message": "x" * 100_001})
    job("payload renders past the limit", "rejected:input_too_large", inputPayload={"notes": "y" * 120_000})
    job("tier in capitals", "rejected:unknown_tier", tier="M5")
    job("unknown model", "rejected:unknown_model", model="gpt-4o")
    job("model above the tier", "rejected:model_not_allowed", tier="access", model="claude-opus-4-6")
    # Forged signatures: dead-lettered, no result.
    forged = _job("poison-forged-1")
    items.append(Poison("no signature", forged, "dlq:bad_signature", {}))
    forged = _job("poison-forged-2")
    items.append(Poison("signature of another body", forged, "dlq:bad_signature", {"Maschina-Signature": sign(b"{}")}))
    forged = _job("poison-forged-3")
    items.append(
        Poison("signature with the wrong key", forged, "dlq:bad_signature", {"Maschina-Signature": sign(forged, b"k")})
    )
    forged = _job("poison-forged-4")
    items.append(Poison("signature not hex", forged, "dlq:bad_signature", {"Maschina-Signature": "sha256=" + "z" * 64}))
    forged = _job("poison-forged-5")
    items.append(
        Poison("signature sha1 scheme", forged, "dlq:bad_signature", {"Maschina-Signature": "sha1=" + "0" * 40})
    )
    # Odd but valid: these must complete.
    upper = _job("poison-upper-hex")
    items.append(
        Poison(
            "signature in upper-case hex",
            upper,
            "completed",
            {"Maschina-Signature": sign(upper).upper().replace("SHA256=", "sha256=")},
            "poison-upper-hex",
        )
    )
    job("system prompt of 200,000 chars", "completed", systemPrompt="s" * 200_000)
    job("unknown fields, one huge", "completed", extraField="z" * 300_000, nested={"a": [1, 2, {"b": None}]})
    job("emoji and right-to-left text", "completed", inputPayload={"message": "résumé 🧪 \u202e שלום"})
    job("inputPayload nested 100 deep", "completed", inputPayload={"message": _nested(100)})
    job("maxTokens above the cap", "completed", maxTokens=10**6)
    job("model empty string", "completed", model="")
    raw_job("bare job without envelope", "completed", orjson.dumps(envelope(f"poison-{len(items):03d}")["data"]))
    return items


def fuzzed(count: int, *, seed: int = 1) -> list[Poison]:
    """`count` valid envelopes with random damage: bytes flipped, cut short, spliced or duplicated."""
    rng = random.Random(seed)
    items: list[Poison] = []
    seen: set[bytes] = set()
    n = 0
    while len(items) < count:
        n += 1
        body = bytearray(_job(f"fuzz-{n:05d}"))
        damage = rng.choice(["flip", "cut", "splice", "insert"])
        at = rng.randrange(len(body))
        if damage == "flip":
            for _ in range(rng.randint(1, 4)):
                body[rng.randrange(len(body))] = rng.randrange(256)
        elif damage == "cut":
            del body[at:]
        elif damage == "splice":
            del body[at : at + rng.randint(1, 40)]
        else:
            body[at:at] = rng.choice([b'"', b"{", b"]", b"\\u0000", b"\xc3", b",", b"null"])
        if bytes(body) not in seen:
            seen.add(bytes(body))
            items.append(_signed(f"fuzz {n} ({damage})", bytes(body), "door"))
    return items
