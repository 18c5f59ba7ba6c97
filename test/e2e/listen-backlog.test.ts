// A reconnect storm meets a control plane that cannot accept for a moment (here: stopped with SIGSTOP): the
// kernel still completes the handshakes into the accept queue, up to the CP's listen backlog (4096, capped by
// net.core.somaxconn), where Node's default of 511 would drop the rest of the SYNs for a second or more.
import { readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import test from "ava";
import { devRoot, spawnCp, tempDir } from "../helpers/cluster.ts";
import { closedPort } from "../helpers/temp.ts";

/** Above Node's default backlog of 511, below the usual soft limit of 1024 open files. */
const CONNECTIONS = 800;

test("connections queue for accept while the CP is stopped, beyond Node's default backlog", async (t) => {
  const somaxconn = Number(readFileSync("/proc/sys/net/core/somaxconn", "utf8"));
  const port = await closedPort();
  const cp = await spawnCp(t, { port, dataDir: tempDir(t, "ee-cp-backlog-"), devDir: await devRoot() });
  const pid = cp.child.pid!;
  process.kill(pid, "SIGSTOP");
  t.teardown(() => {
    if (cp.child.exitCode === null) process.kill(pid, "SIGCONT");
  });

  const sockets: Socket[] = [];
  t.teardown(() => {
    for (const s of sockets) s.destroy();
  });
  let connected = 0;
  for (let i = 0; i < CONNECTIONS; i++) {
    const s = connect(port, "127.0.0.1", () => connected++);
    s.on("error", () => {});
    sockets.push(s);
  }
  // A SYN the full queue dropped is retried after a second: wait less than that.
  await new Promise((r) => setTimeout(r, 800));
  t.is(connected, Math.min(CONNECTIONS, somaxconn + 1), `somaxconn ${somaxconn}`);
  process.kill(pid, "SIGCONT");
});
