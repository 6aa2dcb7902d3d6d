/** The committed src/generated types against what `agent-worker schema` generates now. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { generatedDir, generatedTypes } from "../scripts/generate-types.js";

test("src/generated matches `agent-worker schema` (else run `make examples-types`)", async () => {
  for (const [name, text] of await generatedTypes()) {
    const committed = readFileSync(join(generatedDir, name), "utf8");
    assert.equal(committed, text, `src/generated/${name} is stale: run \`make examples-types\``);
  }
});
