// The supported Compose subset, shared by the CP (early 400s, preflight) and the agent (the truth: it runs it):
// parse (YAML), validate (refusing unsupported keys by name), canonicalize and hash. It lives in compose/, not
// spec/, because it is code both programs run, while spec/ holds documents and schemas. Here: the model, the
// bounds, the whole-file checks (size, volumes, port clashes, start order, published ports) and the hash; one
// service's keys are read by compose/service.ts with the readers of compose/fields.ts. Pure: imports those,
// spec/errors.ts, spec/protocol.ts (the size cap), lib/canonical-json, the yaml package and node:crypto
// (hashing), no I/O.
import { createHash } from "node:crypto";
import { parse } from "yaml";
import { canonicalJson } from "../lib/canonical-json.ts";
import { ComposeError } from "../spec/errors.ts";
import { MAX_COMPOSE_BYTES } from "../spec/protocol.ts";
import { asMap, invalid, isMap, unsupported } from "./fields.ts";
import { parseService } from "./service.ts";

/**
 * A published host port. Workloads are reached through the agent's proxy on their container port, so the agent
 * refuses these unless its policy allows them, and then binds them to 127.0.0.1 only (see PublishedPorts).
 */
export interface PortMapping {
  host_ip: string;
  host_port: number;
  container_port: number;
  protocol: "tcp" | "udp";
}

export type VolumeMount =
  /** A named volume of this project; created per deployment under the engine's volume store. */
  | { type: "volume"; source: string; target: string; read_only: boolean }
  /** A host path; allowed only under the agent's bind allowlist. */
  | { type: "bind"; source: string; target: string; read_only: boolean };

export interface ComposeHealthcheck {
  /** Docker's form: ["CMD", ...] or ["CMD-SHELL", "..."], or ["NONE"] to disable. */
  test: string[];
  interval_ms: number;
  timeout_ms: number;
  retries: number;
  start_period_ms: number;
}

export interface ComposeService {
  name: string;
  image?: string;
  /** Path of the build inside the deployment's build context, and the Dockerfile relative to it. */
  build?: { context: string; dockerfile: string };
  command?: string[];
  entrypoint?: string[];
  environment: Record<string, string>;
  ports: PortMapping[];
  volumes: VolumeMount[];
  healthcheck?: ComposeHealthcheck;
  restart: "no" | "always" | "on-failure" | "unless-stopped";
  depends_on: string[];
  /** Absolute path the process starts in; the image's default when absent. */
  working_dir?: string;
  /** user[:group] the process runs as; the image's default when absent. */
  user?: string;
  /** `read_only: true`: the container's root filesystem is mounted read-only (volumes stay writable). */
  read_only?: boolean;
}

export interface ComposeProject {
  /** In start order: every service after the services it depends on. */
  services: ComposeService[];
  /** Named volumes the project declares. */
  volumes: string[];
}

/**
 * What a compose may publish: `any` (the CP's early check, which does not know the agent's policy), `loopback`
 * (127.0.0.1 only) or `none` (no `ports:` at all, the agent's default).
 */
export type PublishedPorts = "any" | "loopback" | "none";

export interface ParseOptions {
  /** Host directories under which bind mounts are allowed; empty (the default) refuses every bind mount. */
  bindAllowlist?: string[];
  /** Default `any`. */
  publishedPorts?: PublishedPorts;
}

/**
 * Bounds on a compose file, checked before the YAML parse (bytes, and a line scan for services) and right after it
 * (counts), so a huge file is refused in milliseconds instead of stalling the agent's event loop.
 */
export const COMPOSE_LIMITS = {
  bytes: MAX_COMPOSE_BYTES,
  services: 32,
  /** Ports of one service. */
  ports: 64,
  /** Environment entries of one service. */
  environment: 256,
  /** Content lines plus commas of the whole text: what the pre-parse scan bounds. */
  nodes: 4096,
} as const;

const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const IGNORED_TOP_LEVEL = new Set(["version", "name"]);
const WILDCARD_IPS = new Set(["0.0.0.0", "::"]);

function parseTopLevelVolumes(v: unknown): Set<string> {
  if (v === undefined) return new Set();
  const m = asMap(v, "volumes");
  for (const [name, options] of Object.entries(m)) {
    if (!VOLUME_NAME.test(name))
      invalid(`volumes.${name}`, "volume names must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$");
    if (options === null) continue;
    const first = Object.keys(asMap(options, `volumes.${name}`))[0];
    if (first !== undefined) unsupported(`volumes.${name}.${first}`, "volume options");
  }
  return new Set(Object.keys(m));
}

/** Two services may not publish the same host port and protocol on overlapping addresses. */
function checkPortClashes(services: ComposeService[]): void {
  const seen: { port: PortMapping; path: string }[] = [];
  for (const s of services) {
    s.ports.forEach((port, i) => {
      const path = `services.${s.name}.ports[${i}]`;
      const clash = seen.find(
        ({ port: o }) =>
          o.host_port === port.host_port &&
          o.protocol === port.protocol &&
          (o.host_ip === port.host_ip || WILDCARD_IPS.has(o.host_ip) || WILDCARD_IPS.has(port.host_ip)),
      );
      if (clash)
        invalid(path, `host port ${port.host_port}/${port.protocol} is already published by ${clash.path}`);
      seen.push({ port, path });
    });
  }
}

/** Start order: each service after its dependencies, ties broken by name (Kahn's algorithm). */
function startOrder(services: ComposeService[]): ComposeService[] {
  const byName = new Map(services.map((s) => [s.name, s]));
  for (const s of services) {
    for (const dep of s.depends_on) {
      if (!byName.has(dep)) invalid(`services.${s.name}.depends_on`, `unknown service ${dep}`);
      if (dep === s.name) invalid(`services.${s.name}.depends_on`, "a service cannot depend on itself");
    }
  }
  const ordered: ComposeService[] = [];
  const placed = new Set<string>();
  const pending = [...services].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  while (pending.length > 0) {
    const i = pending.findIndex((s) => s.depends_on.every((d) => placed.has(d)));
    if (i < 0) invalid("services", `depends_on cycle among ${pending.map((s) => s.name).join(", ")}`);
    const [next] = pending.splice(i, 1);
    ordered.push(next!);
    placed.add(next!.name);
  }
  return ordered;
}

function tooLarge(what: string, n: number, max: number): never {
  throw new ComposeError("EE-COMPOSE-TOO-LARGE", `${what} has ${n}; at most ${max}`);
}

/**
 * Refuses a text whose structure is too large to parse quickly, without parsing it: its lines that carry content
 * (not blank, not comments) plus its commas bound the nodes a block or flow YAML document can hold.
 */
function prescan(text: string): void {
  let nodes = 0;
  let content = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) {
      if (content) nodes++;
      content = false;
    } else if (c === 44) nodes++;
    else if (!content && c !== 32 && c !== 9 && c !== 13) {
      // A comment line stays without content; a `#` after content is the line's content already counted.
      if (c === 35) {
        const eol = text.indexOf("\n", i);
        i = (eol < 0 ? text.length : eol) - 1;
      } else content = true;
    }
  }
  if (content) nodes++;
  if (nodes > COMPOSE_LIMITS.nodes)
    tooLarge("the compose file's lines and separators", nodes, COMPOSE_LIMITS.nodes);
}

function parseYaml(text: string): unknown {
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > MAX_COMPOSE_BYTES) {
    throw new ComposeError(
      "EE-COMPOSE-INVALID",
      `the compose file is ${bytes} bytes; at most ${MAX_COMPOSE_BYTES}`,
    );
  }
  prescan(text);
  try {
    // maxAliasCount bounds alias expansion ("billion laughs"); merge keeps `<<: *defaults`, common in compose files.
    return parse(text, { uniqueKeys: true, maxAliasCount: 100, merge: true, prettyErrors: false });
  } catch (err) {
    throw new ComposeError("EE-COMPOSE-INVALID", `not valid YAML: ${(err as Error).message.split("\n")[0]}`);
  }
}

/** The per-service counts, checked on the parsed document before any service is validated. */
function checkCounts(services: [string, unknown][]): void {
  if (services.length > COMPOSE_LIMITS.services)
    tooLarge("services", services.length, COMPOSE_LIMITS.services);
  for (const [name, v] of services) {
    if (!isMap(v)) continue;
    const { ports, environment } = v;
    if (Array.isArray(ports) && ports.length > COMPOSE_LIMITS.ports)
      tooLarge(`services.${name}.ports`, ports.length, COMPOSE_LIMITS.ports);
    const env = Array.isArray(environment)
      ? environment.length
      : isMap(environment)
        ? Object.keys(environment).length
        : 0;
    if (env > COMPOSE_LIMITS.environment)
      tooLarge(`services.${name}.environment`, env, COMPOSE_LIMITS.environment);
  }
}

/** Refuses what the agent's published-port policy does not allow (see PublishedPorts). */
function checkPublished(services: ComposeService[], policy: PublishedPorts): void {
  if (policy === "any") return;
  for (const s of services) {
    s.ports.forEach((port, i) => {
      const path = `services.${s.name}.ports[${i}]`;
      if (policy === "none") {
        throw new ComposeError(
          "EE-COMPOSE-PORTS",
          `${path}: this agent publishes no host ports; the agent's proxy reaches the service on its container port (health.port)`,
        );
      }
      if (port.host_ip !== "127.0.0.1") {
        throw new ComposeError(
          "EE-COMPOSE-PORTS",
          `${path}: host_ip ${port.host_ip} is not allowed; this agent publishes ports on 127.0.0.1 only`,
        );
      }
    });
  }
}

/** Parses and validates a compose file into the supported model. Throws ComposeError. */
export function parseCompose(text: string, opts: ParseOptions = {}): ComposeProject {
  const doc = parseYaml(text);
  if (!isMap(doc)) invalid("(root)", "a compose file must be a mapping with services");
  for (const key of Object.keys(doc)) {
    if (key !== "services" && key !== "volumes" && !IGNORED_TOP_LEVEL.has(key) && !key.startsWith("x-")) {
      unsupported(key);
    }
  }
  const declared = parseTopLevelVolumes(doc.volumes);
  const entries = Object.entries(asMap(doc.services, "services"));
  if (entries.length === 0) invalid("services", "at least one service is needed");
  checkCounts(entries);
  const services = entries.map(([name, v]) => parseService(name, v, declared, opts.bindAllowlist ?? []));
  checkPortClashes(services);
  checkPublished(services, opts.publishedPorts ?? "any");
  return { services: startOrder(services), volumes: [...declared].sort() };
}

/** Deterministic JSON of a project (keys sorted at every level): equal apps, however spelled, give equal text. */
export function canonicalCompose(project: ComposeProject): string {
  return canonicalJson(project);
}

/** SHA-256 hex over the canonical compose, then (with a build context) a NUL byte and the context's SHA-256. */
export function composeHash(project: ComposeProject, context?: Uint8Array): string {
  const h = createHash("sha256").update(canonicalCompose(project));
  if (context) h.update(Buffer.from([0])).update(createHash("sha256").update(context).digest());
  return h.digest("hex");
}
