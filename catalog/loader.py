"""Loading a catalog from TOML: the built-in `default.toml` or an ops-supplied file (`WORKER_CATALOG`).

A bad file must stop the worker at start-up with a message ops can act on, so every fault is collected
(not just the first) and each one names the file, the line, the entry and what is wrong.
"""

from __future__ import annotations

import functools
import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import cast

from catalog.model import DEFAULT_OUTPUT_CAP, PROVIDERS, Catalog, ModelSpec, ProviderName, TierSpec

__all__ = ["CatalogError", "Fault", "default_catalog", "load_catalog", "parse_catalog"]

_DEFAULT_SOURCE = "catalog/default.toml (built in)"

_TIER_KEYS = ("rank", "default_model", "monthly_quota")
_MODEL_KEYS = ("id", "display_name", "provider", "min_tier", "multiplier", "output_cap")
_TIER_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")
_MODEL_ID = re.compile(r"[^\s\x00-\x1f\x7f]{1,256}")
_OLLAMA_PREFIX = "ollama/"
# Plain digits keep the file readable and every product exact and small: at most 9 + 18 digits.
_MULTIPLIER_TEXT = re.compile(r"[0-9]{1,9}(\.[0-9]{1,18})?")
_MULTIPLIER_FORM = 'a quoted decimal such as "3" or "0.25" (plain digits: at most 9 before the point and 18 after)'


@dataclass(frozen=True, slots=True)
class Fault:
    """One thing wrong with a catalog file. `line` is None when the text gives no line to point at."""

    source: str
    line: int | None
    entry: str | None
    problem: str

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}, line {self.line}"
        return f"{where}: {self.problem}" if self.entry is None else f"{where}: {self.entry}: {self.problem}"


class CatalogError(ValueError):
    """A catalog file that may not be used; the message has one self-contained line per fault."""

    def __init__(self, faults: Sequence[Fault]) -> None:
        self.faults = tuple(faults)
        super().__init__("\n".join(str(fault) for fault in self.faults))


def parse_catalog(text: str, source: str) -> Catalog:
    """Build a catalog from TOML text; `source` names the file in every fault."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError([_syntax_fault(exc, text, source)]) from None
    return _Reader(text, source).read(document)


def load_catalog(path: Path | str) -> Catalog:
    """Read and check a catalog file; raise CatalogError naming every fault."""
    source, path = str(path), Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CatalogError(
            [Fault(source, None, None, f"cannot read the catalog file: {exc.strerror or exc}")]
        ) from None
    try:
        # An editor's byte-order mark is harmless in a config file, so it is dropped rather than refused.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CatalogError([Fault(source, line, None, f"not UTF-8 text (byte {exc.start})")]) from None
    return parse_catalog(text, source)


@functools.cache
def default_catalog() -> Catalog:
    text = resources.files("catalog").joinpath("default.toml").read_text(encoding="utf-8")
    return parse_catalog(text, _DEFAULT_SOURCE)


_TOML_POSITION = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)$")


def _syntax_fault(exc: tomllib.TOMLDecodeError, text: str, source: str) -> Fault:
    # Python 3.11's TOMLDecodeError carries its position only inside the message text.
    message = str(exc)
    found = _TOML_POSITION.search(message)
    if found is None:
        return Fault(source, None, None, f"TOML syntax error: {message}")
    problem = message[: found.start()]
    if found.group(1) is None:
        return Fault(
            source, text.rstrip().count("\n") + 1, None, f"TOML syntax error: {problem} (at the end of the file)"
        )
    return Fault(source, int(found.group(1)), None, f"TOML syntax error: {problem} (column {found.group(2)})")


class _Lines:
    """Where entries and keys sit in the text. tomllib keeps no positions, so headers are found by pattern.

    Only the usual layout (`[tiers.NAME]` and `[[models]]` blocks) is located; an entry written another
    way, or a count that does not add up, yields no line rather than a wrong one.
    """

    def __init__(self, text: str) -> None:
        # TOML ends lines with LF or CRLF only; str.splitlines would also split on form feeds and the like.
        self._lines = text.split("\n")

    def _matching(self, pattern: re.Pattern[str]) -> list[int]:
        return [index for index, line in enumerate(self._lines) if pattern.match(line)]

    def key_line(self, start: int, key: str) -> int | None:
        pattern = _key_pattern(key)
        for index in range(start + 1, len(self._lines)):
            line = self._lines[index]
            if re.match(r"\s*\[", line):
                return None
            if pattern.match(line):
                return index + 1
        return None

    def top_level(self, key: str) -> int | None:
        header = re.compile(rf"\s*\[{{1,2}}\s*{_name_pattern(key)}\s*[\].]")
        found = self._matching(header) or self._matching(_key_pattern(key))
        return found[0] + 1 if found else None

    def tier(self, name: str) -> _Place:
        found = self._matching(re.compile(rf"\s*\[\s*tiers\s*\.\s*{_name_pattern(name)}\s*\]"))
        return _Place(self, found[0] if len(found) == 1 else None)

    def models(self, count: int) -> list[_Place]:
        found = self._matching(re.compile(r"\s*\[\[\s*(?:models|\"models\"|'models')\s*\]\]"))
        if len(found) != count:
            return [_Place(self, None)] * count
        return [_Place(self, index) for index in found]


@dataclass(frozen=True, slots=True)
class _Place:
    lines: _Lines
    header: int | None  # 0-based index of the entry's header line

    def line(self, key: str | None = None) -> int | None:
        if self.header is None:
            return None
        at_key = self.lines.key_line(self.header, key) if key is not None else None
        return at_key if at_key is not None else self.header + 1


def _name_pattern(name: str) -> str:
    quoted = re.escape(name)
    return rf"(?:{quoted}|\"{quoted}\"|'{quoted}')"


def _key_pattern(key: str) -> re.Pattern[str]:
    return re.compile(rf"\s*{_name_pattern(key)}\s*=")


def _describe(value: object) -> str:
    """A value as the TOML author wrote it, with its TOML type."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the float {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return f"the {type(value).__name__} {value}"


def _listing(names: Iterable[str]) -> str:
    return ", ".join(names) or "none"


class _Reader:
    """Reads a parsed TOML document into a Catalog, collecting every fault on the way."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.lines = _Lines(text)
        self.faults: list[Fault] = []

    def fault(self, line: int | None, entry: str | None, problem: str) -> None:
        self.faults.append(Fault(self.source, line, entry, problem))

    def read(self, document: dict[str, object]) -> Catalog:
        for key in document:
            if key not in ("tiers", "models"):
                self.fault(
                    self.lines.top_level(key), None, f"unknown top-level key {key!r} (expected tiers and models)"
                )
        raw_tiers = cast(
            dict[str, object], self._section(document, "tiers", dict, "a table of tiers written [tiers.NAME]")
        )
        raw_models = cast(
            list[object], self._section(document, "models", list, "an array of tables written [[models]]")
        )
        tiers = self._tiers(raw_tiers)
        models, model_ids = self._models(raw_models, declared_tiers=set(raw_tiers))
        self._check_defaults(tiers, models, model_ids)
        if self.faults:
            # Faults without a line concern the whole file; they come first, then the rest in file order.
            raise CatalogError(sorted(self.faults, key=lambda fault: fault.line or 0))
        return Catalog(
            tiers=MappingProxyType({tier.name: tier.spec() for tier in tiers}),
            models=MappingProxyType(models),
            source=self.source,
        )

    def _section(
        self, document: dict[str, object], key: str, kind: type[dict[str, object] | list[object]], shape: str
    ) -> object:
        """The top-level table or array `key`, or an empty one of its kind after recording why not."""
        value = document.get(key)
        if value is None:
            self.fault(None, None, f"no {key}: the catalog needs {shape}")
            return kind()
        if not isinstance(value, kind) or (kind is list and not all(isinstance(item, dict) for item in value)):
            self.fault(self.lines.top_level(key), None, f"{key} must be {shape}, not {_describe(value)}")
            return kind()
        if not value:
            self.fault(self.lines.top_level(key), None, f"{key} is empty: the catalog needs {shape}")
        return value

    def _unknown_keys(self, body: Mapping[str, object], known: Sequence[str], entry: str, place: _Place) -> None:
        for key in body:
            if key not in known:
                self.fault(place.line(key), entry, f"unknown key {key!r} (known keys: {_listing(known)})")

    def _present(self, body: Mapping[str, object], key: str, entry: str, place: _Place) -> object:
        if key not in body:
            self.fault(place.line(), entry, f"missing key {key!r}")
        return body.get(key)

    def _text(self, body: Mapping[str, object], key: str, entry: str, place: _Place) -> str | None:
        value = self._present(body, key, entry, place)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.fault(place.line(key), entry, f"{key} must be a non-empty string, not {_describe(value)}")
            return None
        return value

    def _whole(
        self, body: Mapping[str, object], key: str, entry: str, place: _Place, *, least: int, default: int | None = None
    ) -> int | None:
        """An integer key of at least `least`; `default` makes the key optional."""
        if key not in body and default is not None:
            return default
        value = self._present(body, key, entry, place)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fault(place.line(key), entry, f"{key} must be a whole number (an integer), not {_describe(value)}")
            return None
        if value < least:
            self.fault(place.line(key), entry, f"{key} is {value}; it must be {least} or more")
            return None
        return value

    # -- tiers ---------------------------------------------------------------------------------------------

    def _tiers(self, raw: dict[str, object]) -> list[_TierEntry]:
        tiers: list[_TierEntry] = []
        for name, body in raw.items():
            entry, place = f"tier {name!r}", self.lines.tier(name)
            if not _TIER_NAME.fullmatch(name):
                self.fault(
                    place.line(),
                    entry,
                    "a tier name is exact lowercase: a letter, then letters, digits, '_' or '-' (64 at most)",
                )
            if not isinstance(body, dict):
                self.fault(self.lines.top_level("tiers"), entry, f"must be a table [tiers.NAME], not {_describe(body)}")
                continue
            self._unknown_keys(body, _TIER_KEYS, entry, place)
            rank = self._whole(body, "rank", entry, place, least=0)
            default_model = self._text(body, "default_model", entry, place)
            # Optional: a tier without one is unlimited.
            quota = self._whole(body, "monthly_quota", entry, place, least=0) if "monthly_quota" in body else None
            tiers.append(_TierEntry(name, rank, default_model, place, quota))
        return tiers

    # -- models --------------------------------------------------------------------------------------------

    def _models(self, raw: list[object], *, declared_tiers: set[str]) -> tuple[dict[str, ModelSpec], set[str]]:
        """The valid models by id, and every id the file names (faulty entries included)."""
        models: dict[str, ModelSpec] = {}
        first_seen: dict[str, tuple[int, int | None]] = {}  # id → (entry number, line)
        for number, (body, place) in enumerate(zip(raw, self.lines.models(len(raw)), strict=True), start=1):
            body = cast(dict[str, object], body)
            raw_id = body.get("id")
            model_id = raw_id if isinstance(raw_id, str) and raw_id else None
            entry = f"model {model_id!r}" if model_id is not None else f"models entry #{number}"
            self._unknown_keys(body, _MODEL_KEYS, entry, place)
            spec = self._model(body, entry, place, declared_tiers)
            if model_id is not None:
                if model_id in first_seen:
                    earlier, line = first_seen[model_id]
                    at = f"line {line}" if line is not None else f"models entry #{earlier}"
                    self.fault(place.line("id"), entry, f"duplicate model id: already defined at {at}")
                    continue
                first_seen[model_id] = (number, place.line("id"))
            if spec is not None:
                models[spec.id] = spec
        return models, set(first_seen)

    def _model(
        self, body: Mapping[str, object], entry: str, place: _Place, declared_tiers: set[str]
    ) -> ModelSpec | None:
        model_id = self._text(body, "id", entry, place)
        if model_id is not None and not _MODEL_ID.fullmatch(model_id):
            self.fault(place.line("id"), entry, "id must be 1 to 256 characters with no spaces or control characters")
            model_id = None
        display_name = self._text(body, "display_name", entry, place)
        provider = self._provider(body, entry, place)
        if provider == "ollama" and model_id is not None and not model_id.startswith(_OLLAMA_PREFIX):
            self.fault(
                place.line("id"),
                entry,
                f"an ollama model's id is {_OLLAMA_PREFIX!r} followed by Ollama's own model name",
            )
            model_id = None
        min_tier = self._min_tier(body, entry, place, declared_tiers)
        multiplier = self._multiplier(body, entry, place)
        output_cap = self._whole(body, "output_cap", entry, place, least=1, default=DEFAULT_OUTPUT_CAP)
        if (
            model_id is None
            or display_name is None
            or provider is None
            or min_tier is None
            or multiplier is None
            or output_cap is None
        ):
            return None
        return ModelSpec(model_id, display_name, provider, min_tier, multiplier, output_cap)

    def _provider(self, body: Mapping[str, object], entry: str, place: _Place) -> ProviderName | None:
        value = self._text(body, "provider", entry, place)
        if value is None:
            return None
        if value not in PROVIDERS:
            self.fault(place.line("provider"), entry, f"unknown provider {value!r} (known: {_listing(PROVIDERS)})")
            return None
        return value

    def _min_tier(self, body: Mapping[str, object], entry: str, place: _Place, declared: set[str]) -> str | None:
        value = self._text(body, "min_tier", entry, place)
        if value is None or value in declared:
            return value
        hint = (
            f"; tier names are exact and lowercase: did you mean {value.lower()!r}?"
            if value.lower() in declared
            else ""
        )
        self.fault(
            place.line("min_tier"), entry, f"unknown min_tier {value!r} (tiers: {_listing(sorted(declared))}){hint}"
        )
        return None

    def _multiplier(self, body: Mapping[str, object], entry: str, place: _Place) -> Decimal | None:
        value = self._present(body, "multiplier", entry, place)
        if value is None:
            return None
        problem = _multiplier_problem(value)
        if problem is not None:
            self.fault(place.line("multiplier"), entry, problem)
            return None
        return Decimal(cast(int | str, value))

    # -- tiers × models ------------------------------------------------------------------------------------

    def _check_defaults(self, tiers: list[_TierEntry], models: Mapping[str, ModelSpec], named: set[str]) -> None:
        """Every tier's default model exists and the tier itself may use it (else its jobs could never run)."""
        ranks = {tier.name: tier.rank for tier in tiers}
        for tier in tiers:
            if tier.default_model is None:
                continue
            entry, line = f"tier {tier.name!r}", tier.place.line("default_model")
            if tier.default_model not in named:
                self.fault(line, entry, f"default_model {tier.default_model!r} is not one of the catalog's models")
                continue
            model = models.get(tier.default_model)
            floor = ranks.get(model.min_tier) if model is not None else None
            if model is not None and floor is not None and tier.rank is not None and floor > tier.rank:
                self.fault(
                    line,
                    entry,
                    f"default_model {model.id!r} needs min_tier {model.min_tier!r} (rank {floor}), "
                    f"above this tier's rank {tier.rank}: the tier may not use its own default model",
                )


@dataclass(frozen=True, slots=True)
class _TierEntry:
    """A tier as read, before the whole file is known to be good; None marks a faulty key."""

    name: str
    rank: int | None
    default_model: str | None
    place: _Place
    monthly_quota: int | None = None

    def spec(self) -> TierSpec:
        # Called only once the file is fault-free, when every key has been read.
        assert self.rank is not None
        assert self.default_model is not None
        return TierSpec(self.name, self.rank, self.default_model, self.monthly_quota)


def _multiplier_problem(value: object) -> str | None:
    """Why `value` is not a usable multiplier, or None. Strings and integers only: a TOML float is binary."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return f"multiplier must be {_MULTIPLIER_FORM}, not {_describe(value)}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return f"multiplier {value} is not a finite number; it must be {_MULTIPLIER_FORM}"
        return f"multiplier {value} is a TOML float, which is binary and inexact; write it as {_MULTIPLIER_FORM}"
    text = str(value)
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        return f"multiplier {text!r} is not a number; it must be {_MULTIPLIER_FORM}"
    if number.is_nan():
        return f"multiplier {text!r} is not a number (NaN); it must be {_MULTIPLIER_FORM}"
    if number.is_infinite():
        return f"multiplier {text!r} is infinite; it must be {_MULTIPLIER_FORM}"
    if number < 0:
        return f"multiplier {text!r} is negative; it must be 0 or more, written as {_MULTIPLIER_FORM}"
    if not _MULTIPLIER_TEXT.fullmatch(text):
        return f"multiplier {text!r} is not written as {_MULTIPLIER_FORM}"
    return None
