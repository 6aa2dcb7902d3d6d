"""The gate over the default catalog: every tier × every model, plus unknown, empty and missing models.

Expectations come from docs/contract.md §3, written out here, never from the catalog code.
"""

from __future__ import annotations

import pytest

from catalog import Allowed, Denied, default_catalog, gate

pytestmark = pytest.mark.unit

# The contract's allowance matrix: Y = allowed, - = model_not_allowed.
MATRIX = """
model                      access  m1  m5  m10  teams  enterprise  internal
claude-haiku-4-5-20251001  -       Y   Y   Y    Y      Y           Y
claude-sonnet-4-6          -       -   Y   Y    Y      Y           Y
claude-opus-4-6            -       -   -   Y    Y      Y           Y
ollama/llama3.2            Y       Y   Y   Y    Y      Y           Y
ollama/llama3.1            Y       Y   Y   Y    Y      Y           Y
ollama/mistral             Y       Y   Y   Y    Y      Y           Y
gpt-5-mini                 -       Y   Y   Y    Y      Y           Y
gpt-5                      -       -   Y   Y    Y      Y           Y
o3                         -       -   -   Y    Y      Y           Y
"""

REFUSALS = {
    "claude-haiku-4-5-20251001": "Model Claude Haiku requires the m1 plan or higher.",
    "claude-sonnet-4-6": "Model Claude Sonnet requires the m5 plan or higher.",
    "claude-opus-4-6": "Model Claude Opus requires the m10 plan or higher.",
    "gpt-5-mini": "Model GPT-5 mini requires the m1 plan or higher.",
    "gpt-5": "Model GPT-5 requires the m5 plan or higher.",
    "o3": "Model o3 requires the m10 plan or higher.",
}

DEFAULTS = {
    "access": "ollama/llama3.2",
    "m1": "claude-haiku-4-5-20251001",
    "m5": "claude-sonnet-4-6",
    "m10": "claude-opus-4-6",
    "teams": "claude-sonnet-4-6",
    "enterprise": "claude-opus-4-6",
    "internal": "claude-opus-4-6",
}

# (decision, resolved model, reason code, message)
Outcome = tuple[str, str | None, str | None, str | None]


def _matrix_cases() -> list[tuple[str, str | None, Outcome]]:
    header, *rows = MATRIX.strip().splitlines()
    tiers = header.split()[1:]
    cases: list[tuple[str, str | None, Outcome]] = []
    for row in rows:
        model, *marks = row.split()
        for tier, mark in zip(tiers, marks, strict=True):
            expected: Outcome = (
                ("allowed", model, None, None)
                if mark == "Y"
                else ("denied", None, "model_not_allowed", REFUSALS[model])
            )
            cases.append((tier, model, expected))
    return cases


MATRIX_CASES = _matrix_cases()


def _outcome(tier: str, model: str | None) -> Outcome:
    decision = gate(default_catalog(), tier, model)
    if isinstance(decision, Allowed):
        assert decision.tier.name == tier
        return ("allowed", decision.model.id, None, None)
    assert isinstance(decision, Denied)
    return ("denied", None, decision.code, decision.message)


def test_the_matrix_covers_every_tier_and_catalog_model() -> None:
    assert len(MATRIX_CASES) == 7 * 9
    assert {model for _, model, _ in MATRIX_CASES} == set(default_catalog().models)
    assert {tier for tier, _, _ in MATRIX_CASES} == set(DEFAULTS)


@pytest.mark.parametrize(("tier", "model", "expected"), MATRIX_CASES, ids=[f"{t}-{m}" for t, m, _ in MATRIX_CASES])
def test_tier_and_catalog_model(tier: str, model: str, expected: Outcome) -> None:
    assert _outcome(tier, model) == expected


@pytest.mark.parametrize("tier", list(DEFAULTS))
@pytest.mark.parametrize("model", [None, ""], ids=["missing", "empty"])
def test_missing_or_empty_model_resolves_to_the_tier_default(tier: str, model: str | None) -> None:
    assert _outcome(tier, model) == ("allowed", DEFAULTS[tier], None, None)


@pytest.mark.parametrize("tier", list(DEFAULTS))
def test_unknown_model_is_refused_for_every_tier(tier: str) -> None:
    assert _outcome(tier, "gpt-4o") == ("denied", None, "unknown_model", "Unknown model 'gpt-4o'.")


@pytest.mark.parametrize(
    "model",
    ["Claude-Sonnet-4-6", " claude-sonnet-4-6", "claude-sonnet-4-6 ", "ollama/LLAMA3.2", "llama3.2", "claude-sonnet"],
)
def test_model_ids_match_exactly(model: str) -> None:
    assert _outcome("internal", model) == ("denied", None, "unknown_model", f"Unknown model {model!r}.")


@pytest.mark.parametrize("tier", ["M5", "Enterprise", " m5", "m5 ", "gold", "", "free"])
def test_unknown_tier_comes_before_the_model(tier: str) -> None:
    expected: Outcome = ("denied", None, "unknown_tier", f"Unknown tier {tier!r}.")
    assert _outcome(tier, "claude-sonnet-4-6") == expected
    assert _outcome(tier, "no-such-model") == expected
    assert _outcome(tier, None) == expected


def test_unknown_model_comes_before_allowance() -> None:
    # access may use no Claude model; an unknown id is still reported as unknown, not as not allowed.
    assert _outcome("access", "claude-opus-4-7")[2] == "unknown_model"


@pytest.mark.parametrize("length", [65, 256, 524_288])
def test_a_long_unknown_model_or_tier_is_quoted_by_its_first_64_characters(length: int) -> None:
    # docs/contract.md §6: a message quotes at most 64 characters of a value taken from the job.
    value = "m" * (length - 1) + "Z"
    quoted = f"'{'m' * 64}'… ({length:,} characters)"

    assert _outcome("m5", value) == ("denied", None, "unknown_model", f"Unknown model {quoted}.")
    assert _outcome(value, None) == ("denied", None, "unknown_tier", f"Unknown tier {quoted}.")


def test_a_model_id_of_64_characters_is_quoted_whole() -> None:
    value = "x" * 64
    assert _outcome("m5", value)[3] == f"Unknown model '{value}'."
