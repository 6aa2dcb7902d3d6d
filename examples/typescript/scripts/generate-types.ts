/**
 * Generates src/generated/{job,result}.ts from `agent-worker schema` (json-schema-to-typescript).
 *
 *   node dist/scripts/generate-types.js          # write the files (`make examples-types` runs this)
 *
 * The worker's Python is `$AGENT_WORKER_PYTHON` (default: the repository's .venv). test/types.test.ts
 * regenerates in memory and fails when the committed files differ: the schema changed, regenerate.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { compile, type JSONSchema } from "json-schema-to-typescript";

/** examples/typescript: this file runs compiled, from dist/scripts. */
export const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const generatedDir = join(packageRoot, "src", "generated");

// The schema's digest lets tests/examples/test_python_types.py see a stale file without node.
const banner = (which: string, text: string): string =>
  `// Generated from \`agent-worker schema --which ${which}\` by scripts/generate-types.ts: do not edit.\n` +
  "// Regenerate with `make examples-types` (from the repository root).\n" +
  `// Schema sha256: ${createHash("sha256").update(text.trimEnd()).digest("hex")}\n`;

export function workerPython(): string {
  return process.env.AGENT_WORKER_PYTHON ?? resolve(packageRoot, "../../.venv/bin/python");
}

/** The worker's schema of the job or of the result, as `agent-worker schema` prints it. */
export function workerSchema(which: "job" | "result"): string {
  return execFileSync(workerPython(), ["-m", "worker", "schema", "--which", which], { encoding: "utf8" });
}

/**
 * Shaped for readable types: property titles dropped (else every field gets a named alias, `RunId1`, ...),
 * `{}` (any JSON value) read as `unknown`. Objects stay open only where the schema says so.
 */
function forTypeScript(node: unknown, isDefinition = true): unknown {
  if (Array.isArray(node)) return node.map((item) => forTypeScript(item, false));
  if (node === null || typeof node !== "object") return node;
  const entries = Object.entries(node as Record<string, unknown>);
  if (entries.length === 0) return { tsType: "unknown" };
  const shaped: Record<string, unknown> = {};
  for (const [key, value] of entries) {
    if (key === "title" && !isDefinition) continue;
    if (key === "$defs" || key === "properties") {
      const definitions = key === "$defs";
      shaped[key] = Object.fromEntries(
        Object.entries(value as Record<string, unknown>).map(([name, schema]) => [name, forTypeScript(schema, definitions)]),
      );
    } else {
      shaped[key] = forTypeScript(value, false);
    }
  }
  return shaped;
}

export async function generatedTypes(): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const which of ["job", "result"] as const) {
    const printed = workerSchema(which);
    const schema = forTypeScript(JSON.parse(printed)) as JSONSchema;
    const text = await compile(schema, which === "job" ? "Job" : "RunResult", {
      bannerComment: banner(which, printed),
      additionalProperties: false,
      format: true,
      style: { printWidth: 120 },
    });
    files.set(`${which}.ts`, text);
  }
  return files;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const [name, text] of await generatedTypes()) {
    writeFileSync(join(generatedDir, name), text);
    console.log(`wrote ${join(generatedDir, name)}`);
  }
}
