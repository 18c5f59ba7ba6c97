// `eectl measurements` run as a user would (a child process via bin/eectl.js) against a real CP.
import test from "ava";
import { eectl } from "../helpers/cli.ts";
import { ADMIN_TOKEN, startTestCp } from "../helpers/cluster.ts";

const MRTD = "ab".repeat(48);

test("measurements add, list --json and remove; errors are one line with a code", async (t) => {
  const { cp } = await startTestCp(t);
  const env = { EE_CP_URL: cp.url, EE_TOKEN: ADMIN_TOKEN };
  const added = await eectl(["measurements", "add", "--node-size", "tiny", "--mrtd", MRTD, "--note", "v1"], {
    env,
  });
  t.is(added.code, 0, added.stderr);
  const entry = JSON.parse(added.stdout) as { id: number };

  const list = await eectl(["measurements", "list", "--json"], { env });
  t.is(list.code, 0, list.stderr);
  const body = JSON.parse(list.stdout) as { trusted: { id: number; mrtd: string; note: string }[] };
  t.deepEqual(
    body.trusted.map((e) => [e.id, e.mrtd, e.note]),
    [[entry.id, MRTD, "v1"]],
  );
  t.deepEqual(Object.keys(body).sort(), ["baselines", "trusted"]);

  const removed = await eectl(["measurements", "remove", String(entry.id)], { env });
  t.is(removed.code, 0, removed.stderr);
  const again = await eectl(["measurements", "remove", String(entry.id)], { env });
  t.is(again.code, 1);
  t.regex(again.stderr, /^eectl: EE-NOT-FOUND: /);
  const bad = await eectl(["measurements", "add", "--node-size", "tiny", "--mrtd", "abc"], { env });
  t.is(bad.code, 1);
  t.regex(bad.stderr, /^eectl: EE-REQ-INVALID: mrtd: /);
  const table = await eectl(["measurements", "list"], { env });
  t.is(table.code, 0, table.stderr);
  t.regex(table.stdout, /^trusted:\n/);
});
