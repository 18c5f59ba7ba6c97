// startControlPlane on a port that is taken: a typed EE-LISTEN-BUSY naming the address and the setting, and nothing
// stored that the next start would trust (no admin digest), so the next start on the same data dir generates and
// shows a token that works; a start that fails between components closes what it had opened. Real SQLite, real
// sockets.
import { existsSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import test from "ava";
import { ADMIN_DIGEST_FILE } from "../../actors/admin-token.ts";
import { PLACEMENT_SECRET_FILE } from "../../actors/bootstrap-secret.ts";
import { startControlPlane } from "../../cp/control-plane.ts";
import { silentLogger } from "../../lib/log.ts";
import { StartupError } from "../../spec/errors.ts";
import { devRoot, startTestCp, tempDir } from "../helpers/cluster.ts";

test("a busy port is EE-LISTEN-BUSY and stores no admin digest; the next start on the data dir serves with a new token", async (t) => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
  t.teardown(() => taken.close());
  const port = (taken.address() as { port: number }).port;
  const dataDir = tempDir(t);

  const err = await t.throwsAsync(
    startControlPlane({
      host: "127.0.0.1",
      port,
      dataDir,
      log: silentLogger,
      devAttestationDir: await devRoot(),
      settings: { listen: "EE_PORT" },
    }),
    { instanceOf: StartupError },
  );
  t.is(err.code, "EE-LISTEN-BUSY");
  t.deepEqual(err.details, { address: `127.0.0.1:${port}`, setting: "EE_PORT", errno: "EADDRINUSE" });
  t.regex(err.message, /listen elsewhere with EE_PORT$/);
  t.false(existsSync(join(dataDir, ADMIN_DIGEST_FILE)), "no digest of a token nobody saw");

  const { cp, api } = await startTestCp(t, { dataDir, adminToken: undefined });
  t.truthy(cp.generatedAdminToken, "the next start generates (and shows) a token");
  t.is((await api("/api/v2/agents", { token: cp.generatedAdminToken })).status, 200);
  t.true(existsSync(join(dataDir, ADMIN_DIGEST_FILE)), "stored once serving");
});

test("an address that is not on this host is EE-LISTEN-FAILED naming it and the system's reason", async (t) => {
  const err = await t.throwsAsync(
    startControlPlane({
      host: "192.0.2.1", // TEST-NET-1: never a local address
      port: 8080,
      dataDir: tempDir(t),
      log: silentLogger,
      devAttestationDir: await devRoot(),
    }),
    { instanceOf: StartupError },
  );
  t.is(err.code, "EE-LISTEN-FAILED");
  t.is(
    err.message,
    "cannot listen on 192.0.2.1:8080 (EADDRNOTAVAIL); listen elsewhere with --listen HOST:PORT",
  );
});

/** Files under `dir` this process holds open (Linux: /proc/self/fd). */
function openFilesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir)) out.push(target);
    } catch {
      // Closed between the listing and the read.
    }
  }
  return out;
}

test("a start that fails between components (an unreadable placement key) closes the databases it had opened", async (t) => {
  const dataDir = tempDir(t);
  writeFileSync(join(dataDir, PLACEMENT_SECRET_FILE), "not a key\n", { mode: 0o600 });
  const err = await t.throwsAsync(
    startControlPlane({
      host: "127.0.0.1",
      port: 0,
      dataDir,
      log: silentLogger,
      devAttestationDir: await devRoot(),
    }),
  );
  t.is((err as { code?: string }).code, "EE-CONFIG-INVALID");
  t.true(existsSync(join(dataDir, "business.db")), "the stores had been opened");
  t.deepEqual(openFilesUnder(dataDir), [], "and are closed again");
});
