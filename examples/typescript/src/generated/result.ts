// Generated from `agent-worker schema --which result` by scripts/generate-types.ts: do not edit.
// Regenerate with `make examples-types` (from the repository root).
// Schema sha256: b97fa281503b6643a48727e1fb809d711e2dd3aeca5332c33d0f4b453bb4d2d2

/**
 * Every error code a result may carry (§6).
 */
export type ErrorCode =
  | "invalid_job"
  | "unknown_tier"
  | "unknown_model"
  | "model_not_allowed"
  | "input_too_large"
  | "quota_exceeded"
  | "provider_not_configured"
  | "provider_auth"
  | "provider_bad_request"
  | "provider_rate_limited"
  | "provider_unavailable"
  | "provider_error"
  | "timeout"
  | "result_too_large"
  | "max_deliveries_exceeded";

export interface RunResult {
  version: 1;
  type: "agent.execute.result";
  jobId: string | null;
  runId: string;
  agentId: string | null;
  userId: string | null;
  tier: string | null;
  status: "completed" | "rejected" | "failed" | "timed_out";
  requestedModel: string | null;
  model: string | null;
  provider: string | null;
  outputPayload: {
    [k: string]: unknown;
  } | null;
  stopReason: string | null;
  usage: ResultUsage;
  billing: ResultBilling;
  error: ResultError | null;
  attempt: number;
  workerId: string;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
}
export interface ResultUsage {
  inputTokens: number;
  outputTokens: number;
  cacheCreationInputTokens: number;
  cacheReadInputTokens: number;
}
export interface ResultBilling {
  multiplier: string;
  billedInputTokens: number;
  billedOutputTokens: number;
  billedTokens: number;
}
export interface ResultError {
  code: ErrorCode;
  message: string;
  retryable: boolean;
}
