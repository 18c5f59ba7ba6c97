// `npm start` on a terminal, as a developer sees it: run under `script` (util-linux) so stdout and stderr are one
// pseudo-terminal, the banner comes out whole and the CP's and the agent's logs follow it as readable lines,
// never as JSON in the middle of it; Ctrl-C (sent through the terminal) stops both.
import { spawn } from "node:child_process";
import test from "ava";
import { REPO, tempDir, waitFor } from "../helpers/cluster.ts";
import { closedPort } from "../helpers/temp.ts";

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI colour sequences are what is stripped.
const ANSI = /\x1b\[[0-9;]*m/g;

test("npm start on a terminal prints a clean banner, then readable log lines", async (t) => {
  t.timeout(180_000);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    EE_HOME: tempDir(t, "ee-start-"),
    EE_PORT: String(await closedPort()),
    EE_AGENT_LISTEN: `127.0.0.1:${await closedPort()}`,
  };
  // What a developer's shell has: none of the overrides.
  for (const k of ["EE_LOG_LEVEL", "EE_LOG_FORMAT", "EE_ADMIN_TOKEN"]) delete env[k];
  const child = spawn("script", ["-qfec", `${process.execPath} --import tsx cli/start.ts`, "/dev/null"], {
    cwd: REPO,
    env,
    detached: true,
  });
  t.teardown(() => {
    if (child.exitCode === null) process.kill(-child.pid!, "SIGKILL");
  });
  let raw = "";
  child.stdout.on("data", (d: Buffer) => {
    raw += d.toString();
  });
  child.stderr.resume();
  const text = () => raw.replace(ANSI, "").replace(/\r/g, "");
  await waitFor(
    "the banner",
    () => {
      if (child.exitCode !== null) throw new Error(`npm start exited with ${child.exitCode}:\n${text()}`);
      return text().includes("Ctrl-C stops both.") || undefined;
    },
    150_000,
  );
  // Held while the banner was written, so out right after it.
  await waitFor("the held log lines", () => /agent registered/.test(text()) || undefined, 15_000).catch(
    () => {},
  );

  const out = text();
  const bannerStart = out.indexOf("EasyEnclave is running");
  const bannerEnd = out.indexOf("Ctrl-C stops both.");
  t.true(bannerStart >= 0 && bannerEnd > bannerStart, out);
  t.false(/^\s*\{"level"/m.test(out), "no JSON log lines on a terminal");
  t.false(
    /\((control-plane|agent)\)/.test(out.slice(0, bannerEnd)),
    "no log line before or inside the banner",
  );
  const after = out.slice(bannerEnd);
  t.regex(after, /WARN \(control-plane\): DEV ATTESTATION ENABLED/);
  t.regex(
    after,
    /INFO \(control-plane\): agent registered \{"agent_id":"agt_[0-9a-f]{24}","vm_name":"local-agent"/,
  );

  const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  child.stdin.write("\x03");
  t.is(await exited, 0);
});
