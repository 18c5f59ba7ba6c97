// The contract boundary holds by itself: transport/rest and cli/commands take the CP runtime's records, ports and
// REST shapes from contract/, never from actors/ or machines/, and contract/ imports nothing above it. The only
// arrows into actors/ left are eectl's commands that start or configure a CP (composition, not REST types).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";

const ROOT = new URL("../../", import.meta.url).pathname;
/** Commands that build and start a CP, or write its configuration: they call into actors/ by design. */
const COMPOSITION = new Set([
  "cli/commands/control-plane.ts",
  "cli/commands/nats.ts",
  "cli/commands/admin-token.ts",
]);

const sources = (dir: string) =>
  readdirSync(join(ROOT, dir))
    .filter((f) => f.endsWith(".ts"))
    .map((f) => `${dir}/${f}`);

/** Each import statement's specifier, and whether it imports types only. */
function importsOf(file: string): { from: string; typeOnly: boolean }[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  return [...text.matchAll(/^import\s+(type\s+)?[^;]*?from\s+"([^"]+)";/gms)].map((m) => ({
    from: m[2] as string,
    typeOnly: m[1] !== undefined,
  }));
}

const upward = (from: string) => /(^|\/)(actors|machines)\//.test(from);

test("transport/rest and cli/commands import nothing from actors/ or machines/ but composition", (t) => {
  const wrong = [...sources("transport/rest"), ...sources("cli/commands")].flatMap((file) =>
    importsOf(file)
      .filter((i) => upward(i.from) && !COMPOSITION.has(file))
      .map((i) => `${file} → ${i.from}`),
  );
  t.deepEqual(wrong, []);
});

test("contract/ imports only zod, spec/, the machines' and attestation's types, and the OIDC token bound", (t) => {
  const allowed = (i: { from: string; typeOnly: boolean }) =>
    i.from === "zod" ||
    i.from.startsWith("./") ||
    i.from.startsWith("../spec/") ||
    i.from === "../identity/oidc-verifier.ts" ||
    (i.typeOnly && (i.from.startsWith("../machines/") || i.from.startsWith("../attestation/")));
  const wrong = sources("contract").flatMap((file) =>
    importsOf(file)
      .filter((i) => !allowed(i))
      .map((i) => `${file} → ${i.from}`),
  );
  t.deepEqual(wrong, []);
});

test("the scan sees a wrong arrow", (t) => {
  t.true(upward("../../actors/agent-index.ts"));
  t.true(upward("../../machines/deployment.ts"));
  t.false(upward("../../contract/agents.ts"));
  // Multi-line imports are read whole.
  t.true(
    importsOf("transport/rest/deployments.ts").some(
      (i) => i.from === "../../contract/deployments.ts" && i.typeOnly,
    ),
  );
});
