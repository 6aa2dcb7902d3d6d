"""Every error code a result may carry and every reason a job may be dead-lettered for (contract 6, 7)."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["DlqReason", "ErrorCode"]


class ErrorCode(StrEnum):
    INVALID_JOB = "invalid_job"
    UNKNOWN_TIER = "unknown_tier"
    UNKNOWN_MODEL = "unknown_model"
    MODEL_NOT_ALLOWED = "model_not_allowed"
    INPUT_TOO_LARGE = "input_too_large"
    QUOTA_EXCEEDED = "quota_exceeded"
    PROVIDER_NOT_CONFIGURED = "provider_not_configured"
    PROVIDER_AUTH = "provider_auth"
    PROVIDER_BAD_REQUEST = "provider_bad_request"
    PROVIDER_RATE_LIMITED = "provider_rate_limited"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    PROVIDER_ERROR = "provider_error"
    TIMEOUT = "timeout"
    RESULT_TOO_LARGE = "result_too_large"
    MAX_DELIVERIES_EXCEEDED = "max_deliveries_exceeded"


class DlqReason(StrEnum):
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    NO_RUN_ID = "no_run_id"
    BAD_RUN_ID = "bad_run_id"
    BAD_SIGNATURE = "bad_signature"
    MAX_DELIVERIES_EXCEEDED = "max_deliveries_exceeded"
