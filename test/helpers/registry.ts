// A real image registry for tests: Debian's `docker-registry` (the CNCF distribution registry) on a loopback port
// of its own, storage in a temp directory, stopped when the test ends. Plain HTTP (Docker treats 127.0.0.0/8 as
// insecure by default) or htpasswd + TLS with a test CA handed to the engine through /etc/docker/certs.d (read
// per pull, no restart). Images are pushed through the Docker Engine API. A test fails instead of skipping when
// EE_REQUIRE_DOCKER=1 and the registry is not installed, as the Docker helper does.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { join } from "node:path";
import type { ExecutionContext } from "ava";
import type Docker from "dockerode";
import { closedPort, tempDir } from "./temp.ts";

const REGISTRY_BIN = "/usr/bin/docker-registry";
const CERTS_D = "/etc/docker/certs.d";

export interface TestRegistry {
  /** `127.0.0.1:PORT`: the registry part of image references. */
  host: string;
  /** Credentials when the registry has authentication. */
  auth?: { username: string; password: string };
  /** Kills the registry process (SIGKILL) and waits for it to exit: a registry that goes away. */
  kill(): Promise<void>;
}

/** True when the registry binary is installed; otherwise logs (or fails, under EE_REQUIRE_DOCKER=1). */
export function registryAvailable(t: ExecutionContext): boolean {
  if (existsSync(REGISTRY_BIN)) return true;
  const why = `${REGISTRY_BIN} is not installed (Debian package docker-registry)`;
  if (process.env.EE_REQUIRE_DOCKER === "1") t.fail(`${why}; EE_REQUIRE_DOCKER=1 makes this a failure`);
  else t.log(`skipped: ${why}; set EE_REQUIRE_DOCKER=1 to make this a failure`);
  return false;
}

/** A test CA and a server certificate for 127.0.0.1 signed by it (openssl). */
function testCertificates(dir: string): { ca: string; cert: string; key: string } {
  const ca = join(dir, "ca.crt");
  const caKey = join(dir, "ca.key");
  const cert = join(dir, "server.crt");
  const key = join(dir, "server.key");
  const ext = join(dir, "ext.cnf");
  const run = (...args: string[]) => execFileSync("openssl", args, { stdio: "pipe" });
  run(
    ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"],
    ...["-subj", "/CN=ee-test-ca", "-keyout", caKey, "-out", ca],
  );
  writeFileSync(ext, "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n");
  const csr = join(dir, "server.csr");
  run(
    ...["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"],
    ...["-subj", "/CN=127.0.0.1", "-keyout", key, "-out", csr],
  );
  run(
    ...["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", caKey, "-CAcreateserial", "-days", "1"],
    ...["-extfile", ext, "-out", cert],
  );
  return { ca, cert, key };
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/**
 * Starts a registry for this test: plain HTTP, or with `auth` htpasswd (bcrypt) behind TLS whose CA the engine
 * is given. Stopped, and its CA removed from the engine, when the test ends.
 */
export async function startRegistry(
  t: ExecutionContext,
  opts: {
    auth?: { username: string; password: string };
    /** Serve through a loopback proxy that sends at most this many bytes per second to clients (plain HTTP). */
    throttleBytesPerSec?: number;
  } = {},
): Promise<TestRegistry> {
  const dir = tempDir(t, "ee-registry-");
  const port = await closedPort();
  const host = `127.0.0.1:${port}`;
  const lines = [
    "version: 0.1",
    "log:",
    "  level: error",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${join(dir, "data")}`,
    "http:",
    `  addr: ${host}`,
  ];
  if (opts.auth) {
    const { ca, cert, key } = testCertificates(dir);
    lines.push("  tls:", `    certificate: ${cert}`, `    key: ${key}`);
    const htpasswd = join(dir, "htpasswd");
    writeFileSync(
      htpasswd,
      execFileSync("htpasswd", ["-Bbn", opts.auth.username, opts.auth.password], { encoding: "utf8" }),
    );
    lines.push("auth:", "  htpasswd:", "    realm: ee-test", `    path: ${htpasswd}`);
    const certsDir = join(CERTS_D, host);
    mkdirSync(certsDir, { recursive: true });
    writeFileSync(join(certsDir, "ca.crt"), readFileSync(ca));
    t.teardown(() => rmSync(certsDir, { recursive: true, force: true }));
  }
  const config = join(dir, "config.yml");
  writeFileSync(config, `${lines.join("\n")}\n`);
  const child: ChildProcess = spawn(REGISTRY_BIN, ["serve", config], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const proxy = opts.throttleBytesPerSec ? await throttlingProxy(port, opts.throttleBytesPerSec) : null;
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
    await proxy?.close();
  };
  t.teardown(kill);
  const deadline = Date.now() + 20_000;
  while (!(await listening(port))) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited: ${stderr}`);
    if (Date.now() > deadline) throw new Error(`docker-registry did not listen on ${host}: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { host: proxy ? `127.0.0.1:${proxy.port}` : host, ...(opts.auth ? { auth: opts.auth } : {}), kill };
}

/**
 * A TCP proxy to the registry that paces what it sends back, so a pull lasts long enough to be interrupted;
 * when the registry side closes, so does the client's (the engine sees the registry go away).
 */
async function throttlingProxy(target: number, bytesPerSec: number) {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(target, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.once("close", () => sockets.delete(s));
      s.on("error", () => {});
    }
    client.pipe(upstream);
    upstream.on("data", (chunk: Buffer) => {
      client.write(chunk);
      upstream.pause();
      setTimeout(() => upstream.resume(), (chunk.length / bytesPerSec) * 1000);
    });
    upstream.once("close", () => client.destroy());
    client.once("close", () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Tags the local image `source` as `HOST/repo:tag`, pushes it, removes the tag from the engine again (so a
 * deploy must pull it) and returns the pushed reference and its manifest digest.
 */
export async function pushImage(
  docker: Docker,
  registry: TestRegistry,
  source: string,
  repoTag: string,
): Promise<{ ref: string; digest: string }> {
  const [repo, tag = "latest"] = repoTag.split(":") as [string, string?];
  const target = `${registry.host}/${repo}`;
  await docker.getImage(source).tag({ repo: target, tag });
  const ref = `${target}:${tag}`;
  // The engine wants an X-Registry-Auth header on every push, empty credentials for an open registry.
  const stream = await docker.getImage(ref).push({
    authconfig: { ...(registry.auth ?? {}), serveraddress: registry.host },
  });
  const events = await new Promise<{ error?: string; aux?: { Digest?: string } }[]>((resolve, reject) =>
    docker.modem.followProgress(stream, (err, out) => (err ? reject(err) : resolve(out))),
  );
  const failed = events.find((e) => e.error);
  if (failed) throw new Error(`pushing ${ref} failed: ${failed.error}`);
  const digest = events.find((e) => e.aux?.Digest)?.aux?.Digest;
  if (!digest) throw new Error(`pushing ${ref} reported no digest`);
  await docker.getImage(ref).remove({ noprune: true });
  return { ref, digest };
}

/** True when the engine holds no image under `repo` (any tag or digest). */
export async function engineLacks(docker: Docker, repo: string): Promise<boolean> {
  const images = await docker.listImages({ filters: { reference: [repo] } });
  const digests = await docker.listImages({ filters: { reference: [`${repo}@*`] } });
  return images.length === 0 && digests.length === 0;
}
