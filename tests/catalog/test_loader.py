"""Loading catalogs: the built-in one equals the contract's table; every fault in an ops file is named."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pytest

from catalog import Catalog, CatalogError, ModelSpec, TierSpec, default_catalog, load_catalog, parse_catalog
from catalog.loader import Fault

# A small valid ops catalog; the fault cases below each change one thing in it. Line numbers matter.
from tests.catalog.ops_file import OPS_CATALOG as BASE
from tests.catalog.ops_file import edit

pytestmark = pytest.mark.unit

# docs/contract.md §3, written out.
CONTRACT_TIERS = [
    ("access", 0, "ollama/llama3.2"),
    ("m1", 1, "claude-haiku-4-5-20251001"),
    ("m5", 2, "claude-sonnet-4-6"),
    ("m10", 3, "claude-opus-4-6"),
    ("teams", 4, "claude-sonnet-4-6"),
    ("enterprise", 5, "claude-opus-4-6"),
    ("internal", 5, "claude-opus-4-6"),
]
# Monthly quotas of billed tokens (docs/contract.md §3, §9); None is unlimited.
CONTRACT_QUOTAS = {
    "access": 0,
    "m1": 500_000,
    "m5": 2_000_000,
    "m10": 10_000_000,
    "teams": 50_000_000,
    "enterprise": None,
    "internal": None,
}
CONTRACT_MODELS = [
    ("claude-haiku-4-5-20251001", "Claude Haiku", "anthropic", "m1", "1"),
    ("claude-sonnet-4-6", "Claude Sonnet", "anthropic", "m5", "3"),
    ("claude-opus-4-6", "Claude Opus", "anthropic", "m10", "15"),
    ("ollama/llama3.2", "Llama 3.2 (local)", "ollama", "access", "0"),
    ("ollama/llama3.1", "Llama 3.1 (local)", "ollama", "access", "0"),
    ("ollama/mistral", "Mistral (local)", "ollama", "access", "0"),
    ("gpt-5-mini", "GPT-5 mini", "openai", "m1", "1"),
    ("gpt-5", "GPT-5", "openai", "m5", "8"),
    ("o3", "o3", "openai", "m10", "20"),
]


def test_default_catalog_is_the_contract_table() -> None:
    catalog = default_catalog()
    assert [(t.name, t.rank, t.default_model) for t in catalog.tiers_by_rank()] == CONTRACT_TIERS
    assert list(catalog.tiers) == [name for name, _, _ in CONTRACT_TIERS]
    assert {t.name: t.monthly_quota for t in catalog.tiers.values()} == CONTRACT_QUOTAS
    assert [
        (m.id, m.display_name, m.provider, m.min_tier, str(m.multiplier), m.output_cap) for m in catalog.models.values()
    ] == [(*row, 16_384) for row in CONTRACT_MODELS]
    assert all(isinstance(m.multiplier, Decimal) for m in catalog.models.values())


def test_default_catalog_is_loaded_once_and_read_only() -> None:
    catalog = default_catalog()
    assert default_catalog() is catalog
    with pytest.raises(TypeError):
        catalog.tiers["gold"] = TierSpec("gold", 9, "claude-opus-4-6")  # type: ignore[index]
    with pytest.raises(TypeError):
        catalog.models["x"] = catalog.models["claude-opus-4-6"]  # type: ignore[index]


def test_the_shipped_file_loads_from_its_path_too() -> None:
    with resources.as_file(resources.files("catalog").joinpath("default.toml")) as path:
        loaded = load_catalog(path)
    assert loaded.source == str(path)
    assert loaded.tiers == default_catalog().tiers
    assert loaded.models == default_catalog().models


def test_provider_model_names() -> None:
    models = default_catalog().models
    assert models["ollama/llama3.2"].provider_model == "llama3.2"
    assert models["claude-opus-4-6"].provider_model == "claude-opus-4-6"
    assert models["gpt-5-mini"].provider_model == "gpt-5-mini"


SOURCE = "/etc/agent-worker/catalog.toml"


def test_a_valid_ops_catalog() -> None:
    catalog = parse_catalog(BASE, SOURCE)
    assert catalog == Catalog(
        tiers={"free": TierSpec("free", 0, "ollama/small"), "pro": TierSpec("pro", 1, "claude-pro")},
        models={
            "ollama/small": ModelSpec("ollama/small", "Small (local)", "ollama", "free", Decimal("0")),
            "claude-pro": ModelSpec("claude-pro", "Claude Pro", "anthropic", "pro", Decimal("2.5"), 8192),
        },
        source=SOURCE,
    )


def test_a_monthly_quota_is_optional_and_absent_means_unlimited() -> None:
    catalog = parse_catalog(edit(BASE, "rank = 1\n", "rank = 1\nmonthly_quota = 1_500\n"), SOURCE)
    assert catalog.tiers["pro"].monthly_quota == 1500
    assert catalog.tiers["free"].monthly_quota is None
    zero = parse_catalog(edit(BASE, "rank = 0\n", "rank = 0\nmonthly_quota = 0\n"), SOURCE)
    assert zero.tiers["free"].monthly_quota == 0


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ('multiplier = "2.5"', Decimal("2.5")),
        ("multiplier = 3", Decimal(3)),
        ('multiplier = "0.000000000000000001"', Decimal("1E-18")),
        ('multiplier = "999999999.5"', Decimal("999999999.5")),
        ('multiplier = "007"', Decimal(7)),
    ],
)
def test_multiplier_forms_accepted(written: str, value: Decimal) -> None:
    catalog = parse_catalog(edit(BASE, 'multiplier = "2.5"', written), SOURCE)
    assert catalog.models["claude-pro"].multiplier == value


@dataclass(frozen=True)
class Case:
    """One fault: the edit that makes it, and what its message must say."""

    name: str
    text: str
    line: int | None
    entry: str | None
    words: tuple[str, ...]


CASES = [
    # TOML syntax: tomllib's own position.
    Case("syntax: missing value", edit(BASE, "rank = 1", "rank ="), 6, None, ("TOML syntax error", "Invalid value")),
    Case(
        "syntax: unterminated string",
        edit(BASE, 'display_name = "Claude Pro"', 'display_name = "Claude Pro'),
        18,
        None,
        ("TOML syntax error", "Illegal character '\\n' (column 27)"),
    ),
    Case("syntax: at the end", BASE + "extra = [1,\n", 23, None, ("TOML syntax error", "end of the file")),
    Case(
        "syntax: a tier twice",
        BASE + "\n[tiers.pro]\nrank = 3\n",
        24,
        None,
        ("TOML syntax error", "Cannot declare ('tiers', 'pro') twice"),
    ),
    # The document's shape.
    Case("no tiers", BASE[BASE.index("[[models]]") :], None, None, ("no tiers", "[tiers.NAME]")),
    Case("no models", BASE[: BASE.index("[[models]]")], None, None, ("no models", "[[models]]")),
    Case(
        "tiers not a table", "tiers = 3\n" + BASE[BASE.index("[[models]]") :], 1, None, ("tiers must be", "integer 3")
    ),
    Case("tiers empty", "tiers = {}\n" + BASE[BASE.index("[[models]]") :], 1, None, ("tiers is empty",)),
    Case(
        "models a table, not an array",
        BASE[: BASE.index("[[models]]")] + '[models.small]\nid = "ollama/small"\n',
        9,
        None,
        ("models must be an array of tables", "[[models]]", "not a table"),
    ),
    Case("unknown top-level key", "version = 2\n" + BASE, 1, None, ("unknown top-level key 'version'",)),
    # Tiers.
    Case("tier name not lowercase", edit(BASE, "[tiers.pro]", "[tiers.Pro]"), 5, "tier 'Pro'", ("exact lowercase",)),
    Case("negative rank", edit(BASE, "rank = 1", "rank = -1"), 6, "tier 'pro'", ("rank is -1", "0 or more")),
    Case("float rank", edit(BASE, "rank = 1", "rank = 1.5"), 6, "tier 'pro'", ("rank must be a whole number", "1.5")),
    Case("string rank", edit(BASE, "rank = 1", 'rank = "1"'), 6, "tier 'pro'", ("whole number", "string '1'")),
    Case("boolean rank", edit(BASE, "rank = 1", "rank = true"), 6, "tier 'pro'", ("whole number", "boolean true")),
    Case("missing rank", edit(BASE, "rank = 1\n", ""), 5, "tier 'pro'", ("missing key 'rank'",)),
    Case(
        "negative monthly quota",
        edit(BASE, "rank = 1\n", "rank = 1\nmonthly_quota = -5\n"),
        7,
        "tier 'pro'",
        ("monthly_quota is -5; it must be 0 or more",),
    ),
    Case(
        "float monthly quota",
        edit(BASE, "rank = 1\n", "rank = 1\nmonthly_quota = 1e6\n"),
        7,
        "tier 'pro'",
        ("monthly_quota must be a whole number", "float 1000000.0"),
    ),
    Case(
        "string monthly quota",
        edit(BASE, "rank = 1\n", 'rank = 1\nmonthly_quota = "unlimited"\n'),
        7,
        "tier 'pro'",
        ("monthly_quota must be a whole number", "string 'unlimited'"),
    ),
    Case(
        "unknown tier key",
        edit(BASE, "rank = 1\n", 'rank = 1\ncolour = "red"\n'),
        7,
        "tier 'pro'",
        ("unknown key 'colour'", "rank, default_model, monthly_quota"),
    ),
    Case(
        "default model not in the catalog",
        edit(BASE, 'default_model = "claude-pro"', 'default_model = "claude-max"'),
        7,
        "tier 'pro'",
        ("default_model 'claude-max' is not one of the catalog's models",),
    ),
    Case(
        "default model the tier may not use",
        edit(BASE, 'default_model = "ollama/small"', 'default_model = "claude-pro"'),
        3,
        "tier 'free'",
        ("default_model 'claude-pro' needs min_tier 'pro' (rank 1)", "rank 0", "may not use its own default"),
    ),
    Case(
        "empty default model",
        edit(BASE, 'default_model = "ollama/small"', 'default_model = ""'),
        3,
        "tier 'free'",
        ("default_model must be a non-empty string",),
    ),
    # Models.
    Case(
        "unknown provider",
        edit(BASE, 'provider = "anthropic"', 'provider = "azure"'),
        19,
        "model 'claude-pro'",
        ("unknown provider 'azure'", "anthropic, ollama, openai"),
    ),
    Case(
        "provider not a string",
        edit(BASE, 'provider = "anthropic"', "provider = 1"),
        19,
        "model 'claude-pro'",
        ("provider must be a non-empty string", "integer 1"),
    ),
    Case(
        "unknown min tier",
        edit(BASE, 'min_tier = "pro"', 'min_tier = "gold"'),
        20,
        "model 'claude-pro'",
        ("unknown min_tier 'gold'", "free, pro"),
    ),
    Case(
        "min tier in the wrong case",
        edit(BASE, 'min_tier = "pro"', 'min_tier = "PRO"'),
        20,
        "model 'claude-pro'",
        ("unknown min_tier 'PRO'", "did you mean 'pro'"),
    ),
    Case(
        "duplicate model id",
        BASE + '\n[[models]]\nid = "claude-pro"\ndisplay_name = "Again"\nprovider = "anthropic"\n'
        'min_tier = "pro"\nmultiplier = "1"\n',
        25,
        "model 'claude-pro'",
        ("duplicate model id", "already defined at line 17"),
    ),
    Case(
        "id with a space",
        edit(BASE, 'id = "claude-pro"', 'id = "claude pro"'),
        17,
        "model 'claude pro'",
        ("no spaces",),
    ),
    Case("empty id", edit(BASE, 'id = "claude-pro"', 'id = ""'), 17, "models entry #2", ("id must be a non-empty",)),
    Case("missing id", edit(BASE, 'id = "claude-pro"\n', ""), 16, "models entry #2", ("missing key 'id'",)),
    Case(
        "ollama id without its prefix",
        edit(BASE, 'id = "ollama/small"', 'id = "small"'),
        10,
        "model 'small'",
        ("'ollama/' followed by Ollama's own model name",),
    ),
    Case(
        "missing display name",
        edit(BASE, 'display_name = "Claude Pro"\n', ""),
        16,
        "model 'claude-pro'",
        ("missing key 'display_name'",),
    ),
    Case(
        "unknown model key",
        edit(BASE, "output_cap = 8192", "outputcap = 8192"),
        22,
        "model 'claude-pro'",
        ("unknown key 'outputcap'", "output_cap"),
    ),
    Case("missing multiplier", edit(BASE, 'multiplier = "2.5"\n', ""), 16, "model 'claude-pro'", ("'multiplier'",)),
    *(
        Case(
            f"multiplier {written}",
            edit(BASE, 'multiplier = "2.5"', f"multiplier = {written}"),
            21,
            "model 'claude-pro'",
            words,
        )
        for written, words in [
            ('"-1"', ("multiplier '-1' is negative",)),
            ("-2", ("multiplier '-2' is negative",)),
            ('"-0.5"', ("negative",)),
            ('"abc"', ("multiplier 'abc' is not a number",)),
            ('""', ("multiplier '' is not a number",)),
            ('"NaN"', ("multiplier 'NaN' is not a number (NaN)",)),
            ('"Infinity"', ("multiplier 'Infinity' is infinite",)),
            ('"-Infinity"', ("infinite",)),
            ("nan", ("multiplier nan is not a finite number",)),
            ("inf", ("multiplier inf is not a finite number",)),
            ("2.5", ("multiplier 2.5 is a TOML float", "binary and inexact", '"0.25"')),
            ("true", ("multiplier must be", "boolean true")),
            ("[1]", ("multiplier must be", "an array")),
            ('"1e3"', ("multiplier '1e3' is not written as", "plain digits")),
            ('" 2.5"', ("multiplier ' 2.5' is not written as",)),
            ('"2_5"', ("not written as",)),
            ('"0.1234567890123456789"', ("not written as", "18 after")),
            ('"1234567890"', ("not written as", "9 before the point")),
        ]
    ),
    *(
        Case(
            f"output_cap {written}",
            edit(BASE, "output_cap = 8192", f"output_cap = {written}"),
            22,
            "model 'claude-pro'",
            words,
        )
        for written, words in [
            ("0", ("output_cap is 0", "1 or more")),
            ("-5", ("output_cap is -5",)),
            ('"8192"', ("output_cap must be a whole number", "string '8192'")),
            ("8192.0", ("output_cap must be a whole number", "float 8192.0")),
            ("true", ("output_cap must be a whole number", "boolean true")),
        ]
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_fault_is_named_with_file_line_entry_and_problem(case: Case) -> None:
    with pytest.raises(CatalogError) as raised:
        parse_catalog(case.text, SOURCE)
    matching = [fault for fault in raised.value.faults if all(word in fault.problem for word in case.words)]
    assert matching, f"no fault says {case.words}; got:\n{raised.value}"
    fault = matching[0]
    assert (fault.source, fault.line, fault.entry) == (SOURCE, case.line, case.entry)
    where = SOURCE if case.line is None else f"{SOURCE}, line {case.line}"
    prefix = where if case.entry is None else f"{where}: {case.entry}"
    assert f"{prefix}: {fault.problem}" in str(raised.value).splitlines()


def test_every_fault_is_reported_at_once_in_file_order() -> None:
    text = edit(edit(edit(BASE, "rank = 1", "rank = -1"), 'provider = "anthropic"', 'provider = "x"'), "= 8192", "= 0")
    with pytest.raises(CatalogError) as raised:
        parse_catalog(text, SOURCE)
    assert [(fault.line, fault.entry) for fault in raised.value.faults] == [
        (6, "tier 'pro'"),
        (19, "model 'claude-pro'"),
        (22, "model 'claude-pro'"),
    ]
    assert len(str(raised.value).splitlines()) == 3
    assert isinstance(raised.value, ValueError)


def test_entries_written_inline_get_no_line_rather_than_a_wrong_one() -> None:
    # Top-level keys must come before the first table header, or TOML puts them inside that table.
    text = (
        "models = [\n"
        '  { id = "ollama/small", display_name = "S", provider = "ollama", min_tier = "free", multiplier = "0" },\n'
        '  { id = "claude-pro", display_name = "P", provider = "anthropic", min_tier = "pro", multiplier = "-3" },\n]\n'
    ) + BASE[: BASE.index("[[models]]")]
    with pytest.raises(CatalogError) as raised:
        parse_catalog(text, SOURCE)
    assert raised.value.faults == (Fault(SOURCE, None, "model 'claude-pro'", raised.value.faults[0].problem),)
    assert str(raised.value).startswith(f"{SOURCE}: model 'claude-pro': multiplier '-3' is negative")


def test_quoted_and_spaced_headers_are_located() -> None:
    text = edit(edit(BASE, "[tiers.pro]", '[ tiers . "pro" ]'), "rank = 1", "rank = -1")
    with pytest.raises(CatalogError) as raised:
        parse_catalog(text, SOURCE)
    assert raised.value.faults[0].line == 6


def test_load_reads_a_file_and_names_it(tmp_path: Path) -> None:
    path = tmp_path / "ops-catalog.toml"
    path.write_text(BASE, encoding="utf-8")
    assert load_catalog(path).source == str(path)
    path.write_text(edit(BASE, 'provider = "anthropic"', 'provider = "azure"'), encoding="utf-8")
    with pytest.raises(
        CatalogError, match=rf"^{re.escape(str(path))}, line 19: model 'claude-pro': unknown provider 'azure'"
    ):
        load_catalog(path)


def test_load_accepts_a_byte_order_mark_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "windows.toml"
    path.write_bytes(b"\xef\xbb\xbf" + BASE.replace("\n", "\r\n").encode())
    assert load_catalog(path).models["claude-pro"].multiplier == Decimal("2.5")
    path.write_bytes(edit(BASE, "rank = 1", "rank = -1").replace("\n", "\r\n").encode())
    with pytest.raises(CatalogError, match=r", line 6: tier 'pro': rank is -1"):
        load_catalog(path)


def test_load_refuses_text_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(edit(BASE, "Claude Pro", "Claude Pr\xf6").encode("latin-1"))
    with pytest.raises(CatalogError, match=rf"^{re.escape(str(path))}, line 18: not UTF-8 text"):
        load_catalog(path)


def test_load_refuses_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(CatalogError, match=rf"^{re.escape(str(path))}: cannot read the catalog file: No such file"):
        load_catalog(path)
