// The CP's bootstrap secrets (placement tie-break, store key): created once (0600), the same bytes on every later
// start, one per file name, refused when the file holds something else.
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { loadOrCreateSecret, PLACEMENT_SECRET_FILE, STORE_KEY_FILE } from "../../actors/bootstrap-secret.ts";

const loadOrCreatePlacementSecret = (dir: string) => loadOrCreateSecret(dir, PLACEMENT_SECRET_FILE);

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

test("each file name is its own secret, and a file already there is never replaced", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "ee-bootstrap-secret-"));
  const store = loadOrCreateSecret(dir, STORE_KEY_FILE);
  t.notDeepEqual(loadOrCreatePlacementSecret(dir), store);
  const hex = "ab".repeat(32);
  const other = mkdtempSync(join(tmpdir(), "ee-bootstrap-secret-"));
  writeFileSync(join(other, STORE_KEY_FILE), `${hex}\n`, { mode: 0o600 });
  t.is(loadOrCreateSecret(other, STORE_KEY_FILE).toString("hex"), hex);
});
