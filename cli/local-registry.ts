// A local image registry and the image moves around it, shared by `npm start`'s demo and the tests: Debian's
// `docker-registry` (the CNCF distribution registry) serving a config we write on a loopback port, images built
// and pushed through the Docker Engine API (dockerode). Docker treats 127.0.0.0/8 as an insecure registry by
// default, so plain HTTP needs no engine configuration.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { Readable } from "node:stream";
import type Docker from "dockerode";

export const REGISTRY_BIN = "/usr/bin/docker-registry";

/** Whether Debian's docker-registry is installed. */
export function hasRegistry(): boolean {
  return existsSync(REGISTRY_BIN);
}

export interface RunningRegistry {
  /** `127.0.0.1:PORT`: the registry part of image references. */
  host: string;
  /** Kills the registry process (SIGKILL) and waits for it to exit. */
  kill(): Promise<void>;
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
 * Serves a registry on 127.0.0.1:`port` with its config and filesystem storage under `dir`; `config` adds YAML
 * lines (indented for the top level) such as `http.tls` or `auth`. Resolves once it accepts connections.
 */
export async function serveRegistry(opts: {
  dir: string;
  port: number;
  config?: { http?: string[]; top?: string[] };
}): Promise<RunningRegistry> {
  const host = `127.0.0.1:${opts.port}`;
  mkdirSync(opts.dir, { recursive: true });
  const lines = [
    "version: 0.1",
    "log:",
    "  level: error",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${join(opts.dir, "data")}`,
    "http:",
    `  addr: ${host}`,
    ...(opts.config?.http ?? []),
    ...(opts.config?.top ?? []),
  ];
  const configFile = join(opts.dir, "config.yml");
  writeFileSync(configFile, `${lines.join("\n")}\n`);
  const child: ChildProcess = spawn(REGISTRY_BIN, ["serve", configFile], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  };
  const deadline = Date.now() + 20_000;
  while (!(await listening(opts.port))) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited: ${stderr}`);
    if (Date.now() > deadline) {
      await kill();
      throw new Error(`docker-registry did not listen on ${host}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { host, kill };
}

async function followed(docker: Docker, stream: NodeJS.ReadableStream, what: string) {
  const events = await new Promise<{ error?: string; aux?: { Digest?: string } }[]>((resolve, reject) =>
    docker.modem.followProgress(stream, (err, out) => (err ? reject(err) : resolve(out))),
  );
  const failed = events.find((e) => e.error);
  if (failed) throw new Error(`${what} failed: ${failed.error}`);
  return events;
}

/** Builds the tar build context `context` as the local image `tag`. */
export async function buildImage(docker: Docker, context: Uint8Array, tag: string): Promise<void> {
  // dockerode takes a stream of the tar; a Buffer wrapped as a one-chunk stream does.
  const stream = await docker.buildImage(Readable.from([Buffer.from(context)]), {
    t: tag,
    rm: true,
    forcerm: true,
  });
  await followed(docker, stream, `building ${tag}`);
}

/**
 * Tags the local image `source` as `HOST/repo:tag`, pushes it, removes that tag from the engine again (so a
 * deploy must pull it) and returns the pushed reference and its manifest digest.
 */
export async function pushImage(
  docker: Docker,
  registry: { host: string; auth?: { username: string; password: string } },
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
  const events = await followed(docker, stream, `pushing ${ref}`);
  const digest = events.find((e) => e.aux?.Digest)?.aux?.Digest;
  if (!digest) throw new Error(`pushing ${ref} reported no digest`);
  await docker.getImage(ref).remove({ noprune: true });
  // The push may have left a digest reference on the image (kept while another tag holds it): drop it too, or a
  // deploy by digest would find it on the engine instead of pulling.
  await docker
    .getImage(`${target}@${digest}`)
    .remove({ noprune: true })
    .catch(() => {});
  return { ref, digest };
}
