/**
 * What the tests share: the stack `python -m tests.examples.stack` started (a nats-server, the fake providers,
 * one `agent-worker run`), described by environment variables, and jobs to vary.
 */
import { randomUUID } from "node:crypto";
import { connect, type ConnectionOptions, type NatsConnection } from "nats";
import type { JobData } from "../src/agent-jobs.js";

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the suite with \`make test-typescript\` (see examples/README.md)`);
  return value;
}

export const natsUrl = required("NATS_URL");
/** The worker's WORKER_SIGNING_KEY: it refuses (dead-letters) every job not signed with it. */
export const signingKey = required("EXAMPLES_SIGNING_KEY");
/** An inbox prefix the worker's WORKER_REPLY_PREFIXES allows besides `_INBOX.`. */
export const allowedInboxPrefix = required("EXAMPLES_INBOX_PREFIX");
const fakeAnthropicUrl = required("EXAMPLES_FAKE_ANTHROPIC_URL");

export function natsConnect(opts: Partial<ConnectionOptions> = {}): Promise<NatsConnection> {
  return connect({ servers: natsUrl, ...opts });
}

export function newJob(fields: Partial<JobData> = {}): JobData {
  return {
    runId: randomUUID(),
    agentId: "a9f3b2c1-0d4e-4f5a-8b6c-7d8e9f0a1b2c",
    userId: "u1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
    tier: "m5",
    model: "claude-sonnet-4-6",
    systemPrompt: "You are a research agent.",
    inputPayload: { message: "Summarise the attached notes." },
    timeoutSecs: 30,
    ...fields,
  };
}

/** How many calls the fake Anthropic has answered so far. */
export async function providerCalls(): Promise<number> {
  const response = await fetch(`${fakeAnthropicUrl}/_fake/stats`);
  const stats = (await response.json()) as { calls: number };
  return stats.calls;
}
