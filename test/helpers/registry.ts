// A real image registry for tests: Debian's `docker-registry` (the CNCF distribution registry) on a loopback port
// of its own, storage in a temp directory, stopped when the test ends. Plain HTTP (Docker treats 127.0.0.0/8 as
// insecure by default) or htpasswd + TLS with a test CA handed to the engine through /etc/docker/certs.d (read
// per pull, no restart). Serving and pushing live in cli/local-registry.ts (npm start's demo uses them too). Without the registry a test
// is skipped visibly, or fails under EE_REQUIRE_DOCKER=1, as the Docker helper does (test/helpers/skip.ts).
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { join } from "node:path";
import type { ExecutionContext } from "ava";
import type Docker from "dockerode";
import { hasRegistry, pushImage, REGISTRY_BIN, serveRegistry } from "../../cli/local-registry.ts";
import { skipUnavailable } from "./skip.ts";
import { closedPort, tempDir } from "./temp.ts";

const CERTS_D = "/etc/docker/certs.d";

export interface TestRegistry {
  /** `127.0.0.1:PORT`: the registry part of image references. */
  host: string;
  /** Credentials when the registry has authentication. */
  auth?: { username: string; password: string };
  /** Kills the registry process (SIGKILL) and waits for it to exit: a registry that goes away. */
  kill(): Promise<void>;
}

/** True when the registry binary is installed; otherwise the test is skipped (failed, under EE_REQUIRE_DOCKER=1). */
export function registryAvailable(t: ExecutionContext): boolean {
  if (hasRegistry()) return true;
  skipUnavailable(
    t,
    "the image registry",
    `${REGISTRY_BIN} is not installed (Debian package docker-registry)`,
    "EE_REQUIRE_DOCKER",
  );
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
  const config: { http: string[]; top: string[] } = { http: [], top: [] };
  if (opts.auth) {
    const { ca, cert, key } = testCertificates(dir);
    config.http.push("  tls:", `    certificate: ${cert}`, `    key: ${key}`);
    const htpasswd = join(dir, "htpasswd");
    writeFileSync(
      htpasswd,
      execFileSync("htpasswd", ["-Bbn", opts.auth.username, opts.auth.password], { encoding: "utf8" }),
    );
    config.top.push("auth:", "  htpasswd:", "    realm: ee-test", `    path: ${htpasswd}`);
    const certsDir = join(CERTS_D, host);
    mkdirSync(certsDir, { recursive: true });
    writeFileSync(join(certsDir, "ca.crt"), readFileSync(ca));
    t.teardown(() => rmSync(certsDir, { recursive: true, force: true }));
  }
  const served = await serveRegistry({ dir, port, config });
  const proxy = opts.throttleBytesPerSec ? await throttlingProxy(port, opts.throttleBytesPerSec) : null;
  const kill = async () => {
    await served.kill();
    await proxy?.close();
  };
  t.teardown(kill);
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

export { pushImage };

/** True when the engine holds no image under `repo` (any tag or digest). */
export async function engineLacks(docker: Docker, repo: string): Promise<boolean> {
  const images = await docker.listImages({ filters: { reference: [repo] } });
  const digests = await docker.listImages({ filters: { reference: [`${repo}@*`] } });
  return images.length === 0 && digests.length === 0;
}
