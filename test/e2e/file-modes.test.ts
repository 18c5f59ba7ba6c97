// File modes (issue 14 item 7): with a umask that would let anyone read and write (0), every file the CP and the
// agent write in their data dirs is 0600 and every directory 0700 (database, WAL, SHM, keys, token digest,
// workload records); a data dir that group or others can write is refused with EE-DATA-DIR-INSECURE by both
// programs, and one that is merely readable (0755, as mkdir makes it) is accepted.
import { chmodSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { startAgent } from "../../agent/agent.ts";
import { startControlPlane } from "../../cp/control-plane.ts";
import { silentLogger } from "../../lib/log.ts";
import { StartupError } from "../../spec/errors.ts";
import {
  ADMIN_TOKEN,
  agentConfig,
  devRoot,
  startTestAgent,
  startTestCp,
  tempDir,
  waitFor,
} from "../helpers/cluster.ts";

// Each test file runs in its own process: the permissive umask proves the modes do not come from the umask.
process.umask(0);

/** Every path under `dir` with a mode other than 0600 (files) or 0700 (directories). */
function looseModes(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = statSync(path);
    const mode = st.mode & 0o777;
    if (st.isDirectory()) {
      if (mode !== 0o700) out.push(`${path} ${mode.toString(8)}`);
      out.push(...looseModes(path));
    } else if (mode !== 0o600) out.push(`${path} ${mode.toString(8)}`);
  }
  return out;
}

test("every file the CP and the agent write is 0600, every directory 0700, whatever the umask", async (t) => {
  const parent = tempDir(t, "ee-modes-");
  const cpDir = join(parent, "cp");
  const agentDir = join(parent, "agent");
  const { cp, dataDir } = await startTestCp(t, { dataDir: cpDir });
  const agent = await startTestAgent(
    t,
    agentConfig(t, cp.wsUrl, (await devRoot()) as string, { data_dir: agentDir }),
  );
  await waitFor("registration", () => cp.index.get(agent.agentId)?.state === "registered");
  const files = readdirSync(dataDir);
  for (const f of [
    "easyenclave.db",
    "easyenclave.db-wal",
    "easyenclave.db-shm",
    "admin-token.sha256",
    "store.key",
  ])
    t.true(files.includes(f), `${f} was written`);
  t.deepEqual(looseModes(parent), []);
  t.is(statSync(dataDir).mode & 0o777, 0o700);
  await cp.stop();
  t.deepEqual(looseModes(parent), [], "still after close");
});

test("an existing database written 0644 by an older version is tightened, WAL and SHM with it", async (t) => {
  const dataDir = tempDir(t, "ee-modes-");
  const first = await startTestCp(t, { dataDir });
  await first.cp.stop();
  for (const f of readdirSync(dataDir))
    if (f.startsWith("easyenclave.db")) chmodSync(join(dataDir, f), 0o644);
  const second = await startTestCp(t, { dataDir, devAttestationDir: first.devDir });
  t.deepEqual(looseModes(dataDir), []);
  await second.cp.stop();
});

for (const mode of [0o777, 0o770, 0o702]) {
  test(`a data dir with mode ${mode.toString(8)} is refused by the CP and the agent (EE-DATA-DIR-INSECURE)`, async (t) => {
    const dir = join(tempDir(t, "ee-modes-"), "data");
    mkdirSync(dir);
    chmodSync(dir, mode);
    const cpErr = await t.throwsAsync(
      startControlPlane({
        host: "127.0.0.1",
        port: 0,
        dataDir: dir,
        log: silentLogger,
        adminToken: ADMIN_TOKEN,
      }),
      { instanceOf: StartupError },
    );
    t.is(cpErr.code, "EE-DATA-DIR-INSECURE");
    t.regex(cpErr.message, /--data-dir .*group or others can write it/);
    t.deepEqual(readdirSync(dir), [], "the CP wrote nothing there");
    const agentErr = await t.throwsAsync(
      startAgent(agentConfig(t, "ws://127.0.0.1:1", await devRoot(), { data_dir: dir }), {
        log: silentLogger,
      }),
      {
        instanceOf: StartupError,
      },
    );
    t.is(agentErr.code, "EE-DATA-DIR-INSECURE");
    t.deepEqual(readdirSync(dir), [], "the agent wrote nothing there");
  });
}

test("a data dir others can only read (0755) is accepted", async (t) => {
  const dir = join(tempDir(t, "ee-modes-"), "data");
  mkdirSync(dir);
  chmodSync(dir, 0o755);
  const { cp } = await startTestCp(t, { dataDir: dir });
  t.truthy(cp.url);
});
