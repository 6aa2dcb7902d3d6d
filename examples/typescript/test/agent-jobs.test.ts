/**
 * src/agent-jobs.ts against a real nats-server and a real `agent-worker run` with the fake providers
 * (tests/examples/stack.py says how they are set up). Each test uses its own run ids.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { createInbox, Empty, type JetStreamClient, type NatsConnection } from "nats";
import {
  awaitResult,
  codePoints,
  DLQ_STREAM,
  DLQ_SUBJECT,
  MAX_MESSAGE_CODE_POINTS,
  publishJob,
  RESULTS_STREAM,
  resultSubject,
  ResultTimeoutError,
  signature,
  type JobData,
  type RunResult,
} from "../src/agent-jobs.js";
import { allowedInboxPrefix, natsConnect, newJob, providerCalls, signingKey } from "./support.js";

const TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

let nc: NatsConnection;
let js: JetStreamClient;

before(async () => {
  nc = await natsConnect();
  js = nc.jetstream();
});

after(async () => {
  await nc.close();
});

/** ceil(tokens × multiplier) in exact decimal arithmetic, as the worker bills. */
function billed(tokens: number, multiplier: string): number {
  const [whole = "0", fraction = ""] = multiplier.split(".");
  const scale = 10n ** BigInt(fraction.length);
  const product = BigInt(tokens) * BigInt(whole + fraction);
  return Number((product + scale - 1n) / scale);
}

/** Publishes signed with no replyTo and reads the record from the results stream. */
async function run(job: JobData): Promise<RunResult> {
  await publishJob(js, job, { signingKey });
  return awaitResult(nc, js, job.runId, { timeout: 20_000 });
}

test("completed: the copy arrives on the reply inbox, billed in exact decimals", async () => {
  const job = newJob();
  const replyTo = createInbox();
  const pending = awaitResult(nc, js, job.runId, { timeout: 20_000, replyTo });
  const ack = await publishJob(js, job, { replyTo, signingKey, jobId: "job-1", traceparent: TRACEPARENT });
  const result = await pending;

  assert.equal(ack.duplicate, false);
  assert.deepEqual(
    [result.status, result.runId, result.jobId, result.model, result.provider, result.error],
    ["completed", job.runId, "job-1", "claude-sonnet-4-6", "anthropic", null],
  );
  assert.deepEqual(result.outputPayload, { text: "Hello from the fake provider." });
  const { usage, billing } = result;
  assert.equal(typeof billing.multiplier, "string");
  assert.equal(billing.multiplier, "3");
  const rawInput = usage.inputTokens + usage.cacheCreationInputTokens + usage.cacheReadInputTokens;
  assert.ok(rawInput > 0);
  assert.equal(billing.billedInputTokens, billed(rawInput, billing.multiplier));
  assert.equal(billing.billedOutputTokens, billed(usage.outputTokens, billing.multiplier));
  assert.equal(billing.billedTokens, billing.billedInputTokens + billing.billedOutputTokens);

  // The worker continued our trace: the record carries the job span's traceparent, in the same trace.
  const record = await nc.request(`$JS.API.DIRECT.GET.${RESULTS_STREAM}.${resultSubject(job.runId)}`, Empty);
  const [, traceId, spanId] = record.headers?.get("traceparent").split("-") ?? [];
  const [, ourTraceId, ourSpanId] = TRACEPARENT.split("-");
  assert.equal(traceId, ourTraceId);
  assert.notEqual(spanId, ourSpanId);
});

for (const [name, fields, status, code] of [
  ["rejected", { tier: "m1", model: "claude-opus-4-6" }, "rejected", "model_not_allowed"],
  ["failed", { tier: "m10", model: "claude-opus-4-6" }, "failed", "provider_bad_request"],
  ["timed_out", { tier: "access", model: "ollama/llama3.2", timeoutSecs: 1 }, "timed_out", "timeout"],
] as const) {
  test(`${name}: read from the results stream`, async () => {
    const job = newJob(fields);
    const result = await run(job);
    assert.equal(result.status, status);
    assert.equal(result.runId, job.runId);
    assert.equal(result.error?.code, code);
    assert.equal(result.outputPayload, null);
  });
}

test("the message limit counts code points, not UTF-16 units", async () => {
  const fits = "😀".repeat(MAX_MESSAGE_CODE_POINTS);
  assert.equal(fits.length, 2 * MAX_MESSAGE_CODE_POINTS); // .length would call this too large
  assert.equal(codePoints(fits), MAX_MESSAGE_CODE_POINTS);

  const accepted = await run(newJob({ inputPayload: { message: fits } }));
  assert.equal(accepted.status, "completed");
  const refused = await run(newJob({ inputPayload: { message: fits + "😀" } }));
  assert.equal(refused.status, "rejected");
  assert.equal(refused.error?.code, "input_too_large");
});

test("a badly signed job is dead-lettered: the await times out and says where to look", async () => {
  const job = newJob();
  const letters = await (await js.consumers.get(DLQ_STREAM, { filterSubjects: [DLQ_SUBJECT] })).consume();
  await publishJob(js, job, { signingKey: "not-the-workers-key" });
  let reason: string | undefined;
  for await (const letter of letters) {
    if (letter.json<{ data: JobData }>().data.runId !== job.runId) continue;
    reason = letter.headers?.get("Maschina-Dlq-Reason");
    break;
  }
  letters.stop();
  assert.equal(reason, "bad_signature");

  await assert.rejects(awaitResult(nc, js, job.runId, { timeout: 500 }), (err: unknown) => {
    assert.ok(err instanceof ResultTimeoutError);
    assert.equal(err.runId, job.runId);
    assert.match(err.message, new RegExp(`no result for run ${job.runId} within 500 ms`));
    assert.match(err.message, /dead-lettered/);
    assert.match(err.message, /MASCHINA_DLQ/);
    return true;
  });
  // With a reply inbox too: nothing comes, and no record exists at the deadline.
  await assert.rejects(
    awaitResult(nc, js, job.runId, { timeout: 300, replyTo: createInbox() }),
    ResultTimeoutError,
  );
});

test("a duplicate publish is dropped by the jobs stream and the run billed once", async () => {
  const job = newJob();
  const callsBefore = await providerCalls();
  const first = await publishJob(js, job, { signingKey });
  const second = await publishJob(js, job, { signingKey });
  const result = await awaitResult(nc, js, job.runId, { timeout: 20_000 });

  assert.deepEqual([first.duplicate, second.duplicate, second.seq], [false, true, first.seq]);
  assert.equal(result.status, "completed");
  assert.equal(await providerCalls(), callsBefore + 1);
});

test("a finished run published again gets its stored result sent to the new replyTo", async () => {
  const job = newJob();
  const stored = await run(job);
  const callsBefore = await providerCalls();

  // Within the jobs stream's duplicate window the same message id never reaches the worker.
  assert.equal((await publishJob(js, job, { signingKey })).duplicate, true);
  // Another message id does; the worker answers from the stored record, without calling the provider.
  const replyTo = createInbox();
  const pending = awaitResult(nc, js, job.runId, { timeout: 20_000, replyTo });
  const again = await publishJob(js, job, { signingKey, replyTo, msgId: `${job.runId}-again` });
  const copy = await pending;

  assert.equal(again.duplicate, false);
  assert.deepEqual(copy, stored);
  assert.equal(await providerCalls(), callsBefore);
});

test("a missed reply copy is read from the stored record at the deadline", async () => {
  const job = newJob();
  const stored = await run(job); // published without replyTo: no copy is ever sent
  assert.deepEqual(await awaitResult(nc, js, job.runId, { timeout: 200, replyTo: createInbox() }), stored);
});

test("a custom inboxPrefix works only when the worker's WORKER_REPLY_PREFIXES allows it", async () => {
  const allowed = await natsConnect({ inboxPrefix: allowedInboxPrefix });
  const other = await natsConnect({ inboxPrefix: "other.inbox" });
  try {
    const job = newJob();
    const replyTo = createInbox(allowedInboxPrefix);
    const pending = awaitResult(allowed, allowed.jetstream(), job.runId, { timeout: 20_000, replyTo });
    await publishJob(allowed.jetstream(), job, { replyTo, signingKey });
    assert.equal((await pending).status, "completed");

    const refused = newJob();
    await publishJob(other.jetstream(), refused, { replyTo: createInbox("other.inbox"), signingKey });
    const result = await awaitResult(other, other.jetstream(), refused.runId, { timeout: 20_000 });
    assert.equal(result.status, "rejected");
    assert.equal(result.error?.code, "invalid_job");
    assert.match(result.error?.message ?? "", /replyTo/);
  } finally {
    await allowed.close();
    await other.close();
  }
});

test("publishJob writes the envelope and the headers the worker reads", async () => {
  // Published where no worker consumes, then read back from the jobs stream as the worker would see it.
  const probe = "maschina.jobs.examples.probe";
  const job = newJob();
  await publishJob(js, job, { replyTo: "_INBOX.api.1", signingKey, traceparent: TRACEPARENT, jobId: "j", subject: probe });
  const jsm = await js.jetstreamManager(false);
  const msg = await jsm.streams.getMessage("MASCHINA_JOBS", { last_by_subj: probe });

  const body = msg.json<Record<string, unknown>>();
  assert.deepEqual(
    [body.id, body.replyTo, body.subject, body.version, body.data],
    ["j", "_INBOX.api.1", probe, 1, job],
  );
  assert.match(String(body.timestamp), /Z$/);
  assert.equal(msg.header.get("Nats-Msg-Id"), job.runId);
  assert.equal(msg.header.get("Maschina-Signature"), signature(msg.data, signingKey));
  assert.equal(msg.header.get("traceparent"), TRACEPARENT);
});
