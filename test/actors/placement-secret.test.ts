// The placement secret is bootstrap state: created once (0600), the same bytes on every later start, refused
// when the file holds something else.
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { loadOrCreatePlacementSecret, PLACEMENT_SECRET_FILE } from "../../actors/placement-secret.ts";

test("created once with mode 0600 and read back unchanged", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "ee-placement-secret-"));
  const first = loadOrCreatePlacementSecret(dir);
  t.is(first.length, 32);
  const file = join(dir, PLACEMENT_SECRET_FILE);
  t.is(statSync(file).mode & 0o777, 0o600);
  t.deepEqual(loadOrCreatePlacementSecret(dir), first, "a restart keeps the secret");
  t.is(readFileSync(file, "utf8").trim(), first.toString("hex"));
  t.notDeepEqual(loadOrCreatePlacementSecret(mkdtempSync(join(tmpdir(), "ee-ps-"))), first);
});

test("a file that is not 32 hex bytes is EE-CONFIG-INVALID", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "ee-placement-secret-"));
  writeFileSync(join(dir, PLACEMENT_SECRET_FILE), "not a secret\n");
  t.throws(() => loadOrCreatePlacementSecret(dir), { message: /not 32 hex-encoded bytes/ });
});
