/**
 * Publish an agent execute job to agent-worker and await its billed result (nats.js v2, the `nats` package).
 *
 * Copy src/ into your service. The wire contract is docs/contract.md; the types in src/generated come from
 * `agent-worker schema`.
 *
 *   const replyTo = createInbox();
 *   const result = awaitResult(nc, js, job.runId, { timeout: 60_000, replyTo }); // subscribes NOW, before publishing
 *   await publishJob(js, job, { replyTo, signingKey });
 *   const billed = await result;                                                 // RunResult, or ResultTimeoutError
 *
 * Points that cost time:
 * - `replyTo` sits at the top level of the envelope (inside `data` it is ignored), and must start with one of the
 *   worker's WORKER_REPLY_PREFIXES (default `_INBOX.`): a connection with a custom `inboxPrefix` gets every job
 *   `rejected` (`invalid_job`) unless that prefix is added there.
 * - The reply copy is plain NATS: subscribe before publishing, or it may be sent to nobody and lost.
 * - A dead-lettered job (bad signature, body not JSON, bad runId, out of deliveries) gets neither a result nor a
 *   copy: every await has a timeout, which ends in `ResultTimeoutError`.
 * - The message limit (100,000 characters) counts code points, not UTF-16 units: use `codePoints()`, not `.length`.
 * - `billing.multiplier` is a JSON string (an exact decimal): never `parseFloat` it for money.
 * - The jobs stream drops a re-publish with the same `Nats-Msg-Id` (the run id) for its duplicate window (2 min):
 *   to get a finished run's stored result sent to a new `replyTo`, publish it again with another `msgId`.
 */
import { createHmac, randomUUID } from "node:crypto";
import { Empty, ErrorCode, headers, NatsError, type JetStreamClient, type NatsConnection, type PubAck } from "nats";
import type { JobData } from "./generated/job.js";
import type { RunResult } from "./generated/result.js";

export type { BareJob, Envelope, Job, JobData } from "./generated/job.js";
export type { ErrorCode, ResultBilling, ResultError, ResultUsage, RunResult } from "./generated/result.js";

export const JOB_SUBJECT = "maschina.jobs.agent.agent.execute";
export const RESULTS_STREAM = "MASCHINA_RESULTS";
export const RESULT_SUBJECT_PREFIX = "maschina.results.agent.execute.";
export const DLQ_STREAM = "MASCHINA_DLQ";
export const DLQ_SUBJECT = "maschina.dlq.agent.execute";
/** The most characters (Unicode code points) of the user message; more is `rejected` with `input_too_large`. */
export const MAX_MESSAGE_CODE_POINTS = 100_000;
/** JetStream API error code: no message found (nats-server errors.json). */
const NO_MESSAGE_FOUND = 10037;

/** No result within the wait: most often the job was dead-lettered, which publishes no result. */
export class ResultTimeoutError extends Error {
  override readonly name = "ResultTimeoutError";

  constructor(
    readonly runId: string,
    readonly timeoutMs: number,
  ) {
    super(
      `no result for run ${runId} within ${timeoutMs} ms. A dead-lettered job gets no result: look for it in the ` +
        `${DLQ_STREAM} stream (${DLQ_SUBJECT}, header Maschina-Dlq-Reason: bad_signature, not_json, not_object, ` +
        "no_run_id, bad_run_id or max_deliveries_exceeded). Otherwise no worker is consuming, or the run is still " +
        "going (each delivery may take the job's timeoutSecs).",
    );
  }
}

export interface PublishOptions {
  /** The worker's WORKER_SIGNING_KEY: adds `Maschina-Signature: sha256=<hex HMAC-SHA256 of the body>`. */
  signingKey?: string | Uint8Array;
  /** Where a copy of the result goes; subscribe to it first (see `awaitResult`). */
  replyTo?: string;
  /** W3C trace context, continued by the worker (as OpenTelemetry's propagator writes it). */
  traceparent?: string;
  tracestate?: string;
  /** The envelope's `id` (the result's `jobId`); default a random UUID. */
  jobId?: string;
  /** `Nats-Msg-Id`; default the run id, so a retried publish is stored once. */
  msgId?: string;
  subject?: string;
}

/** Counts what the worker counts: code points. `"😀".length` is 2, `codePoints("😀")` is 1. */
export function codePoints(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

export function resultSubject(runId: string): string {
  return RESULT_SUBJECT_PREFIX + runId;
}

/** The `Maschina-Signature` value for exactly these body bytes. */
export function signature(body: Uint8Array, key: string | Uint8Array): string {
  return "sha256=" + createHmac("sha256", key).update(body).digest("hex");
}

/** Publishes `job` in the event envelope; the PubAck's `duplicate` is true when the jobs stream dropped it. */
export async function publishJob(js: JetStreamClient, job: JobData, opts: PublishOptions = {}): Promise<PubAck> {
  const subject = opts.subject ?? JOB_SUBJECT;
  const envelope = {
    id: opts.jobId ?? randomUUID(),
    timestamp: new Date().toISOString(),
    version: 1,
    subject,
    replyTo: opts.replyTo ?? null, // top level: inside `data` the worker would ignore it
    data: job,
  };
  const body = new TextEncoder().encode(JSON.stringify(envelope));
  const h = headers();
  if (opts.signingKey !== undefined) h.set("Maschina-Signature", signature(body, opts.signingKey));
  if (opts.traceparent !== undefined) h.set("traceparent", opts.traceparent);
  if (opts.tracestate !== undefined) h.set("tracestate", opts.tracestate);
  return js.publish(subject, body, { msgID: opts.msgId ?? job.runId, headers: h });
}

export interface AwaitOptions {
  /** Milliseconds to wait; then `ResultTimeoutError`. */
  timeout: number;
  /** The job's `replyTo`: subscribed during this call, so call it BEFORE `publishJob` and await it after. */
  replyTo?: string;
  resultsStream?: string;
}

/**
 * The run's result: the copy sent to `replyTo` when given (and, should that copy be missed, the stored record
 * read at the deadline), else the record in the results stream through an ordered consumer, which also finds a
 * run that finished long ago.
 */
export function awaitResult(
  nc: NatsConnection,
  js: JetStreamClient,
  runId: string,
  opts: AwaitOptions,
): Promise<RunResult> {
  const stream = opts.resultsStream ?? RESULTS_STREAM;
  const pending =
    opts.replyTo === undefined
      ? fromResultsStream(js, stream, runId, opts.timeout)
      : fromReply(nc, js, stream, runId, opts.replyTo, opts.timeout);
  // Awaited only after publishJob: if that throws first, this must not become an unhandled rejection.
  pending.catch(() => undefined);
  return pending;
}

function fromReply(
  nc: NatsConnection,
  js: JetStreamClient,
  stream: string,
  runId: string,
  replyTo: string,
  timeout: number,
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    // Synchronous: the SUB is queued before any PUB the caller sends afterwards on this connection.
    const sub = nc.subscribe(replyTo, {
      max: 1,
      callback: (err, msg) => {
        clearTimeout(timer);
        try {
          if (err) throw err;
          resolve(msg.json<RunResult>());
        } catch (failure) {
          reject(failure);
        }
      },
    });
    const timer = setTimeout(() => {
      sub.unsubscribe();
      storedResult(nc, js, stream, runId).then((stored) => {
        if (stored) resolve(stored);
        else reject(new ResultTimeoutError(runId, timeout));
      }, reject);
    }, timeout);
  });
}

async function fromResultsStream(
  js: JetStreamClient,
  stream: string,
  runId: string,
  timeout: number,
): Promise<RunResult> {
  const deadline = Date.now() + timeout;
  const consumer = await js.consumers.get(stream, { filterSubjects: [resultSubject(runId)] });
  const messages = await consumer.consume({ max_messages: 1 });
  const timer = setTimeout(() => messages.stop(), Math.max(0, deadline - Date.now()));
  try {
    for await (const msg of messages) {
      return msg.json<RunResult>();
    }
  } finally {
    clearTimeout(timer);
    messages.stop();
  }
  throw new ResultTimeoutError(runId, timeout);
}

/**
 * One direct get of the run's record: `$JS.API.DIRECT.GET.<stream>.<subject>` answers the last message on the
 * subject, or a 404 status while there is none. It needs `allow_direct` on the results stream, which the worker
 * sets; without it nobody answers (503) and the stream API is asked instead.
 */
async function storedResult(
  nc: NatsConnection,
  js: JetStreamClient,
  stream: string,
  runId: string,
): Promise<RunResult | null> {
  const subject = resultSubject(runId);
  try {
    const msg = await nc.request(`$JS.API.DIRECT.GET.${stream}.${subject}`, Empty, { timeout: 5_000 });
    if (msg.headers?.code === 404) return null;
    if (msg.headers?.hasError) throw new Error(`direct get of ${subject}: ${msg.headers.code} ${msg.headers.description}`);
    return msg.json<RunResult>();
  } catch (err) {
    if (!(err instanceof NatsError && err.code === ErrorCode.NoResponders)) throw err;
  }
  try {
    const jsm = await js.jetstreamManager(false);
    return (await jsm.streams.getMessage(stream, { last_by_subj: subject })).json<RunResult>();
  } catch (err) {
    if (err instanceof NatsError && err.jsError()?.err_code === NO_MESSAGE_FOUND) return null;
    throw err;
  }
}
