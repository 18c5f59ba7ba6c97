// The admin token across starts, run as a user would (bin/eectl.js child processes): a first start that fails on a
// busy port stores no token, so the next start prints one that works; `eectl admin-token rotate` replaces it on a
// running CP (old token 401, new 200); a start that finds a stored token says how to get a new one.
import { chmodSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import test from "ava";
import { eectl, eectlRunning, type LongEectl } from "../helpers/cli.ts";
import { devRoot, tempDir, waitFor } from "../helpers/cluster.ts";
import { closedPort } from "../helpers/temp.ts";

/** No token from the environment: these tests are about the generated and stored ones. */
const ENV = { EE_ADMIN_TOKEN: "", EE_LOG_LEVEL: "warn" };

async function occupied(t: { teardown(fn: () => void): void }): Promise<number> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => server.close());
  return (server.address() as { port: number }).port;
}

const cpArgs = async (port: number, dataDir: string) => [
  "control-plane",
  "--listen",
  `127.0.0.1:${port}`,
  "--data-dir",
  dataDir,
  "--dev-attestation",
  await devRoot(),
];

/** Starts a CP without a token and waits for it to print what it says about the admin token. */
async function startCp(t: Parameters<typeof eectlRunning>[0], dataDir: string) {
  const port = await closedPort();
  const cp = eectlRunning(t, await cpArgs(port, dataDir), ENV);
  const said = await waitFor(
    "the CP to print its admin token line",
    () => /^admin token.*$/m.exec(cp.stdout())?.[0],
    30_000,
  );
  return { cp, url: `http://127.0.0.1:${port}`, said };
}

const status = (url: string, token: string) =>
  fetch(`${url}/api/v2/agents`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);

async function stop(cp: LongEectl): Promise<number | null> {
  cp.kill("SIGINT");
  return cp.exited;
}

test("a first start on a busy port exits 1 without a stack and stores no token; the next start prints one that works", async (t) => {
  const dataDir = tempDir(t);
  const busy = await occupied(t);
  const failed = await eectl(await cpArgs(busy, dataDir), { env: ENV });
  t.is(failed.code, 1);
  t.is(
    failed.stderr
      .split("\n")
      .filter((l) => l.startsWith("eectl: "))
      .join("\n"),
    `eectl: EE-LISTEN-BUSY: 127.0.0.1:${busy} is already in use (is another control plane or agent running?); listen elsewhere with --listen HOST:PORT`,
  );
  t.notRegex(failed.stderr, /Internal Error|^\s+at /m, "no stack trace");
  t.is(failed.stdout, "", "no token printed for a CP that never served");

  const { cp, url, said } = await startCp(t, dataDir);
  const token = /^admin token \(shown once\): (ee_\S+)$/.exec(said)?.[1];
  t.truthy(token, said);
  t.is(await status(url, token!), 200);
  t.is(await stop(cp), 0);
});

test("admin-token rotate: a running CP takes the new token and refuses the old; the next start says one is stored", async (t) => {
  const dataDir = tempDir(t);
  const first = await startCp(t, dataDir);
  const old = /\(shown once\): (ee_\S+)$/.exec(first.said)![1]!;
  t.is(await status(first.url, old), 200);

  const rotated = await eectl(["admin-token", "rotate", "--data-dir", dataDir, "--json"]);
  t.is(rotated.code, 0, rotated.stderr);
  const { admin_token: fresh, digest_file } = JSON.parse(rotated.stdout) as {
    admin_token: string;
    digest_file: string;
  };
  t.regex(fresh, /^ee_[A-Za-z0-9_-]{32}$/);
  t.is(digest_file, `${dataDir}/admin-token.sha256`);
  await waitFor(
    "the running CP to take the rotated token",
    async () => (await status(first.url, fresh)) === 200 || undefined,
    15_000,
  );
  t.is(await status(first.url, old), 401);
  t.is(await stop(first.cp), 0);

  const second = await startCp(t, dataDir);
  t.is(
    second.said,
    `admin token: the one set earlier (its digest is in ${digest_file}); for a new one run \`eectl admin-token rotate --data-dir ${dataDir}\`, or start with --admin-token-file or EE_ADMIN_TOKEN`,
  );
  t.is(await status(second.url, fresh), 200);
  t.is(await status(second.url, old), 401);
  t.is(await stop(second.cp), 0);
});

test("admin-token rotate prints the token for people, and refuses a data dir that is not there", async (t) => {
  const dataDir = tempDir(t);
  const run = await eectl(["admin-token", "rotate", "--data-dir", dataDir]);
  t.is(run.code, 0);
  t.regex(run.stdout, /^admin token \(shown once\): ee_\S+$/m);
  const missing = await eectl(["admin-token", "rotate", "--data-dir", `${dataDir}/nope`]);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /^eectl: EE-CONFIG-INVALID: --data-dir \S+\/nope is not a directory/m);
});

test("--data-dir under a regular file is EE-DATA-DIR-UNUSABLE naming the file, without a stack", async (t) => {
  const dir = tempDir(t);
  const file = `${dir}/plain-file`;
  await import("node:fs").then((fs) => fs.writeFileSync(file, "x"));
  const run = await eectl(await cpArgs(await closedPort(), `${file}/cp`), { env: ENV });
  t.is(run.code, 1);
  t.regex(
    run.stderr,
    new RegExp(
      `^eectl: EE-DATA-DIR-UNUSABLE: --data-dir ${file}/cp: ${file} is a file, not a directory$`,
      "m",
    ),
  );
  t.notRegex(run.stderr, /Internal Error|^\s+at /m);
});

test("admin-token rotate --help says a running CP picks the token up", async (t) => {
  const run = await eectl(["admin-token", "rotate", "--help"]);
  t.is(run.code, 0);
  t.regex(run.stdout, /running CP re-reads the digest file/);
});

test("--admin-token-file: the token in a 0600 file works, and a file others can write is refused before serving", async (t) => {
  const dir = tempDir(t);
  const file = join(dir, "token");
  const token = "file-token-0123456789abcdef";
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  const port = await closedPort();
  const cp = eectlRunning(t, [...(await cpArgs(port, join(dir, "data"))), "--admin-token-file", file], ENV);
  await waitFor("serving", () => cp.stdout().includes("control plane:"), 30_000);
  t.false(cp.stdout().includes(token), "never printed");
  const agents = (bearer: string) =>
    fetch(`http://127.0.0.1:${port}/api/v2/agents`, { headers: { authorization: `Bearer ${bearer}` } });
  t.is((await agents(token)).status, 200);
  t.is((await agents("not-the-token-0123456789")).status, 401);
  cp.kill("SIGTERM");
  await cp.exited;

  chmodSync(file, 0o666);
  const refused = await eectl(
    [...(await cpArgs(await closedPort(), join(dir, "data2"))), "--admin-token-file", file],
    { env: ENV },
  );
  t.is(refused.code, 1);
  t.regex(refused.stderr, /^eectl: EE-CONFIG-INVALID: --admin-token-file .* group or others can write it/m);
  t.is(refused.stdout, "");
});
