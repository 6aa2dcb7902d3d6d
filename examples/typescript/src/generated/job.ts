// Generated from `agent-worker schema --which job` by scripts/generate-types.ts: do not edit.
// Regenerate with `make examples-types` (from the repository root).
// Schema sha256: 54f7e3f08bde8ccf93e8e86bc6cc12180d15028ca0487ed2970dde6bfa698060

/**
 * An agent.execute job: an envelope whose `data` is an object, or else a bare job. Unknown fields are ignored.
 */
export type Job = Envelope | BareJob;

/**
 * The event envelope the API publishes; `data` is the job.
 *
 * The worker reads nothing else of the envelope but `replyTo` and `id`, so any JSON value is accepted
 * for the other fields, and for `id`, which the publisher writes as a string.
 */
export interface Envelope {
  /**
   * Event id (a string); the result's jobId when a string, else null.
   */
  id?: unknown;
  /**
   * When the event was published (ISO 8601); not read.
   */
  timestamp?: unknown;
  /**
   * Envelope version (1); not read.
   */
  version?: unknown;
  /**
   * Subject the job was published to; not read.
   */
  subject?: unknown;
  replyTo?: string | null;
  data: JobData;
}
/**
 * The job itself: an envelope's `data`, or the whole body of a bare job.
 */
export interface JobData {
  type?: "agent.execute";
  /**
   * Run id, a NATS subject token.
   */
  runId: string;
  agentId: string;
  userId: string;
  /**
   * Customer tier; an unknown one is rejected by the gate (unknown_tier).
   */
  tier: string;
  /**
   * Model id; absent, null or empty means the tier's default.
   */
  model?: string | null;
  systemPrompt?: string | null;
  /**
   * Absent or null means {}. The user message is its `message` when a string, else the compact JSON of its `message` when present, else of the whole object; at most 100,000 characters.
   */
  inputPayload?: {
    [k: string]: unknown;
  } | null;
  /**
   * Budget of each delivery's attempt, retries included; null means 300.
   */
  timeoutSecs?: number | null;
  /**
   * Null means 4096; lowered to the model's output cap.
   */
  maxTokens?: number | null;
}
/**
 * A job published without an envelope: `replyTo` is its own top-level field.
 */
export interface BareJob {
  type?: "agent.execute";
  /**
   * Run id, a NATS subject token.
   */
  runId: string;
  agentId: string;
  userId: string;
  /**
   * Customer tier; an unknown one is rejected by the gate (unknown_tier).
   */
  tier: string;
  /**
   * Model id; absent, null or empty means the tier's default.
   */
  model?: string | null;
  systemPrompt?: string | null;
  /**
   * Absent or null means {}. The user message is its `message` when a string, else the compact JSON of its `message` when present, else of the whole object; at most 100,000 characters.
   */
  inputPayload?: {
    [k: string]: unknown;
  } | null;
  /**
   * Budget of each delivery's attempt, retries included; null means 300.
   */
  timeoutSecs?: number | null;
  /**
   * Null means 4096; lowered to the model's output cap.
   */
  maxTokens?: number | null;
  replyTo?: string | null;
}
