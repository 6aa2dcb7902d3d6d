"""The worker's one settings object, read from the environment names of docs/contract.md §1, §4, §7, §8."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from worker.contract import (
    ADVISORIES_STREAM,
    CONSUMER,
    JOB_SUBJECT,
    JOBS_STREAM,
    OWN_SUBJECT_PREFIXES,
    REPLY_PREFIX,
    RESULTS_STREAM,
    USAGE_BUCKET,
    WORKER_INBOX_PREFIX,
)
from worker.providers.retry import RetryPolicy

__all__ = ["Settings", "SettingsError"]


class SettingsError(ValueError):
    """A setting the worker cannot start with; the message names the variable."""


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


CommaList = Annotated[tuple[str, ...], BeforeValidator(_split_commas)]


# The policy's own defaults are the settings' defaults: one place says what "unset" means.
_DEFAULT_RETRY = RetryPolicy()


def _env(name: str, description: str, default: Any, **kwargs: Any) -> Any:
    return Field(default, validation_alias=AliasChoices(name), description=description, **kwargs)


class Settings(BaseModel):
    """Every knob, typed; `Settings.from_env()` is the only place the environment is read."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    nats_url: CommaList = _env(
        "NATS_URL", "NATS server URL, or a comma-separated seed list", ("nats://127.0.0.1:4222",)
    )
    nats_creds: Path | None = _env("NATS_CREDS", "NATS credentials file", None)
    nats_nkey_seed: Path | None = _env("NATS_NKEY_SEED", "NATS nkey seed file", None)
    nats_tls_ca: Path | None = _env("NATS_TLS_CA", "CA bundle for the NATS server's certificate", None)
    nats_tls_cert: Path | None = _env("NATS_TLS_CERT", "client certificate for NATS mutual TLS", None)
    nats_tls_key: Path | None = _env("NATS_TLS_KEY", "client key for NATS mutual TLS", None)

    jobs_stream: str = _env("WORKER_JOBS_STREAM", "jobs stream", JOBS_STREAM)
    subjects: CommaList = _env("WORKER_SUBJECTS", "job subjects consumed (filter subjects)", (JOB_SUBJECT,))
    consumer: str = _env("WORKER_CONSUMER", "durable pull consumer shared by all replicas", CONSUMER)
    ack_wait_secs: float = _env("WORKER_ACK_WAIT_SECS", "consumer ack_wait, seconds", 30.0, gt=0)
    max_deliver: int = _env("WORKER_MAX_DELIVER", "consumer max_deliver", 5, ge=1)
    max_ack_pending: int = _env(
        "WORKER_MAX_ACK_PENDING", "consumer max_ack_pending; at least replicas × concurrency", 10_000, ge=1
    )
    results_stream: str = _env("WORKER_RESULTS_STREAM", "results stream", RESULTS_STREAM)
    advisories_stream: str = _env(
        "WORKER_ADVISORIES_STREAM",
        "stream keeping the server's max-deliveries advisories for the consumer until a replica handles them",
        ADVISORIES_STREAM,
    )
    reply_prefixes: CommaList = _env(
        "WORKER_REPLY_PREFIXES", "subject prefixes a job's replyTo may start with", (REPLY_PREFIX,)
    )
    concurrency: int = _env("WORKER_CONCURRENCY", "most jobs in flight in this replica", 64, ge=1)
    shutdown_grace_secs: float = _env(
        "WORKER_SHUTDOWN_GRACE_SECS", "on SIGTERM, how long in-flight jobs may finish", 25.0, ge=0
    )
    # docs/contract.md §7: backoff inside one delivery, then a nak whose delay grows with the delivery count.
    # Infinity is refused: an infinite wait is a stuck job, not a policy.
    retry_base_secs: float = _env(
        "WORKER_RETRY_BASE_SECS",
        "provider retries inside one delivery: bound of the first wait, doubling per retry (full jitter), seconds",
        _DEFAULT_RETRY.base,
        gt=0,
        allow_inf_nan=False,
    )
    retry_cap_secs: float = _env(
        "WORKER_RETRY_CAP_SECS",
        "longest wait between provider retries inside one delivery, seconds; at least WORKER_RETRY_BASE_SECS",
        _DEFAULT_RETRY.cap,
        gt=0,
        allow_inf_nan=False,
    )
    retry_max_calls: int = _env(
        "WORKER_RETRY_MAX_CALLS",
        "most provider calls in one delivery; 1 retries only by redelivery",
        _DEFAULT_RETRY.max_calls,
        ge=1,
    )
    redelivery_base_secs: float = _env(
        "WORKER_REDELIVERY_BASE_SECS",
        "nak delay after a retryable error on the first delivery, doubling per delivery, seconds",
        _DEFAULT_RETRY.redelivery_base,
        gt=0,
        allow_inf_nan=False,
    )
    redelivery_cap_secs: float = _env(
        "WORKER_REDELIVERY_CAP_SECS",
        "longest nak delay, seconds; at least WORKER_REDELIVERY_BASE_SECS",
        _DEFAULT_RETRY.redelivery_cap,
        gt=0,
        allow_inf_nan=False,
    )
    http_port: int = _env("WORKER_HTTP_PORT", "port of /metrics, /healthz, /readyz; 0 turns them off", 8080, ge=0)
    signing_key: SecretStr | None = _env(
        "WORKER_SIGNING_KEY", "HMAC-SHA256 key; when set, every job must carry Maschina-Signature", None
    )
    catalog_file: Path | None = _env("WORKER_CATALOG", "catalog TOML file replacing the built-in one", None)
    worker_id: str | None = _env("WORKER_ID", "this replica's id in results; default host name and pid", None)
    log_format: Literal["json", "console"] | None = _env(
        "WORKER_LOG_FORMAT", "json or console; default json unless a terminal", None
    )

    quotas: Literal["on", "off"] = _env(
        "WORKER_QUOTAS", "on enforces each tier's monthly quota of billed tokens per user (docs/contract.md §9)", "off"
    )
    usage_bucket: str = _env(
        "WORKER_USAGE_BUCKET",
        "JetStream key-value bucket of users' monthly usage (with WORKER_QUOTAS=on)",
        USAGE_BUCKET,
        # JetStream's rule for bucket names (the bucket's stream is KV_<name>).
        pattern=r"^[A-Za-z0-9_-]+$",
    )

    anthropic_api_key: SecretStr | None = _env("ANTHROPIC_API_KEY", "Anthropic API key", None)
    anthropic_base_url: str | None = _env("ANTHROPIC_BASE_URL", "Anthropic API base URL", None)
    openai_api_key: SecretStr | None = _env("OPENAI_API_KEY", "OpenAI API key", None)
    openai_base_url: str | None = _env(
        "OPENAI_BASE_URL", "OpenAI API base URL, e.g. http://vllm:8000/v1 for any OpenAI-compatible server", None
    )
    ollama_host: str = _env("OLLAMA_HOST", "Ollama server", "http://127.0.0.1:11434")

    @model_validator(mode="after")
    def _check_reply_prefixes(self) -> Settings:
        for prefix in self.reply_prefixes:
            if not prefix.endswith("."):
                raise ValueError(f"WORKER_REPLY_PREFIXES: {prefix!r} must end with '.'")
            if prefix.startswith(OWN_SUBJECT_PREFIXES):
                ours = " or ".join(OWN_SUBJECT_PREFIXES)
                raise ValueError(f"WORKER_REPLY_PREFIXES: {prefix!r} lies under {ours}, which is ours")
            if prefix.startswith(WORKER_INBOX_PREFIX + "."):
                raise ValueError(
                    f"WORKER_REPLY_PREFIXES: {prefix!r} covers the worker's own inboxes ({WORKER_INBOX_PREFIX}.)"
                )
        return self

    @model_validator(mode="after")
    def _check_retry_caps(self) -> Settings:
        for cap_name, cap, base_name, base in (
            ("WORKER_RETRY_CAP_SECS", self.retry_cap_secs, "WORKER_RETRY_BASE_SECS", self.retry_base_secs),
            (
                "WORKER_REDELIVERY_CAP_SECS",
                self.redelivery_cap_secs,
                "WORKER_REDELIVERY_BASE_SECS",
                self.redelivery_base_secs,
            ),
        ):
            if cap < base:
                raise ValueError(f"{cap_name}: {cap} is below {base_name} ({base}); a cap must be at least its base")
        return self

    def signing_key_bytes(self) -> bytes | None:
        """WORKER_SIGNING_KEY as the door takes it, or None when jobs are not signed."""
        return self.signing_key.get_secret_value().encode() if self.signing_key is not None else None

    @property
    def quotas_on(self) -> bool:
        return self.quotas == "on"

    def retry_policy(self) -> RetryPolicy:
        """The provider retry policy these settings describe (docs/contract.md §7)."""
        return RetryPolicy(
            base=self.retry_base_secs,
            cap=self.retry_cap_secs,
            max_calls=self.retry_max_calls,
            redelivery_base=self.redelivery_base_secs,
            redelivery_cap=self.redelivery_cap_secs,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read the environment (empty values count as unset); raise `SettingsError` naming the variable."""
        env = os.environ if environ is None else environ
        raw: dict[str, Any] = {name: env[name] for name in cls.env_names() if env.get(name, "") != ""}
        try:
            return cls.model_validate({**raw, **overrides})
        except ValidationError as exc:
            # Not `str(exc)`: pydantic's text carries each error's `input_value`, which for a check across
            # settings is the whole mapping of variables, keys included (contract section 11). `from None`
            # keeps that text out of any traceback too.
            raise SettingsError(cls._describe(exc)) from None

    @classmethod
    def _describe(cls, exc: ValidationError) -> str:
        """One line per fault, each naming its variable, quoting nothing but what a check chose to quote."""
        env_names = dict(zip(cls.model_fields, cls.env_names(), strict=True))
        lines = []
        for error in exc.errors(include_url=False, include_input=False, include_context=False):
            message = error["msg"].removeprefix("Value error, ")
            location = error["loc"]
            if location:
                name = str(location[0])
                lines.append(f"{env_names.get(name, name)}: {message}")
            else:
                lines.append(message)  # a check across settings: its message names its variables
        return "; ".join(lines)

    @classmethod
    def env_names(cls) -> list[str]:
        return [str(field.validation_alias.choices[0]) for field in cls.model_fields.values()]  # type: ignore[union-attr]

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """(variable, default, description) for every setting, for `run --help` and the README."""
        rows = []
        for name, field in zip(cls.env_names(), cls.model_fields.values(), strict=True):
            default = field.default
            shown = ",".join(default) if isinstance(default, tuple) else ("" if default is None else str(default))
            rows.append((name, shown, field.description or ""))
        return rows
