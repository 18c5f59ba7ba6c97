// The supported Compose subset, shared by the CP (early 400s, preflight) and the agent (the truth: it runs it):
// parse (YAML), validate (refusing unsupported keys by name), canonicalize and hash. It lives in compose/, not
// spec/, because it is code both programs run, while spec/ holds documents and schemas. Pure: imports
// spec/errors.ts, spec/protocol.ts (the size cap), lib/canonical-json, the yaml package, zod (IP syntax) and
// node:crypto (hashing), no I/O. Over 400 lines: one small reader per supported key, all private to
// parseCompose, so every refusal of the subset reads in one place.
import { createHash } from "node:crypto";
import { parse } from "yaml";
import { z } from "zod";
import { canonicalJson } from "../lib/canonical-json.ts";
import { ComposeError } from "../spec/errors.ts";
import { MAX_COMPOSE_BYTES } from "../spec/protocol.ts";

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

type YamlMap = Record<string, unknown>;

const SERVICE_NAME = /^[a-z0-9][a-z0-9_-]*$/;
const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const ENV_KEY = /^[^=\0]+$/;
const RESTART = ["no", "always", "on-failure", "unless-stopped"] as const;
const DEPENDS_CONDITIONS = ["service_started", "service_healthy", "service_completed_successfully"];
/** Keys that would hand a workload the TD's kernel, devices or host namespaces. */
const ISOLATION_KEYS = new Set([
  "privileged",
  "cap_add",
  "network_mode",
  "pid",
  "ipc",
  "devices",
  "security_opt",
  "sysctls",
  "userns_mode",
  "cgroup_parent",
  "cgroup",
  "uts",
]);
/** Top-level keys that carry no meaning for a single-project agent. */
const IGNORED_TOP_LEVEL = new Set(["version", "name"]);
const DEFAULT_HEALTH = { interval_ms: 30_000, timeout_ms: 30_000, retries: 3, start_period_ms: 0 };
const DURATION_UNITS_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};
const ipAddress = z.union([z.ipv4(), z.ipv6()]);
const WILDCARD_IPS = new Set(["0.0.0.0", "::"]);

function invalid(path: string, message: string): never {
  throw new ComposeError("EE-COMPOSE-INVALID", `${path}: ${message}`);
}

function unsupported(path: string, why?: string): never {
  throw new ComposeError("EE-COMPOSE-UNSUPPORTED", `${path} is not supported${why ? `: ${why}` : ""}`);
}

function isMap(v: unknown): v is YamlMap {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function asMap(v: unknown, path: string): YamlMap {
  if (!isMap(v)) invalid(path, "must be a mapping");
  return v;
}

function asString(v: unknown, path: string): string {
  if (typeof v !== "string" || v === "") invalid(path, "must be a non-empty string");
  return v;
}

function asBoolean(v: unknown, path: string): boolean {
  if (typeof v !== "boolean") invalid(path, "must be a boolean");
  return v;
}

function asStringList(v: unknown, path: string): string[] {
  if (!Array.isArray(v)) invalid(path, "must be a list");
  return v.map((item, i) => {
    if (typeof item !== "string") invalid(`${path}[${i}]`, "must be a string");
    return item;
  });
}

/** `parse` applied to `m[key]` (its path `path.key`), or undefined when the key is absent. */
function field<T>(
  m: YamlMap,
  key: string,
  path: string,
  parse: (v: unknown, path: string) => T,
): T | undefined {
  return m[key] === undefined ? undefined : parse(m[key], `${path}.${key}`);
}

/** Refuses any key of `map` outside `allowed`; `x-*` extension keys are ignored, as Compose does. */
function checkKeys(map: YamlMap, allowed: readonly string[], path: string): void {
  for (const key of Object.keys(map)) {
    if (allowed.includes(key) || key.startsWith("x-")) continue;
    if (ISOLATION_KEYS.has(key))
      unsupported(`${path}.${key}`, "it breaks the workload's isolation inside the TD");
    unsupported(`${path}.${key}`);
  }
}

/** The segments of a slash-separated path, without empty and `.` ones. */
function segments(p: string): string[] {
  return p.split("/").filter((s) => s !== "" && s !== ".");
}

/** Path segments of a relative path inside the build context; refuses absolute paths and `..`. */
function contextPath(v: unknown, path: string): string {
  const raw = asString(v, path);
  if (raw.startsWith("/")) invalid(path, "must be relative to the build context");
  const parts = segments(raw);
  if (parts.includes("..")) invalid(path, "must not leave the build context (..)");
  return parts.length === 0 ? "." : parts.join("/");
}

function absolutePath(v: unknown, path: string): string {
  const raw = asString(v, path);
  if (!raw.startsWith("/")) invalid(path, "must be an absolute path");
  return raw;
}

/** Splits a command line the way a POSIX shell splits words, honouring single and double quotes. */
export function splitShellWords(line: string, path = "command"): string[] {
  const words: string[] = [];
  let word = "";
  // A quoted empty string ('' or "") is still a word, so "started" is tracked apart from the text.
  let started = false;
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    const next = line[i + 1];
    if (quote === "'") {
      if (c === "'") quote = null;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === "\\" && next !== undefined && '"\\$`'.includes(next)) word += line[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      started = true;
    } else if (c === "\\" && next !== undefined) {
      word += line[++i];
      started = true;
    } else if (/\s/.test(c)) {
      if (started) words.push(word);
      word = "";
      started = false;
    } else {
      word += c;
      started = true;
    }
  }
  if (quote) invalid(path, `unterminated ${quote} quote`);
  if (started) words.push(word);
  return words;
}

function parseCommand(v: unknown, path: string): string[] {
  if (typeof v === "string") return splitShellWords(v, path);
  return asStringList(v, path);
}

function parseDuration(v: unknown, path: string): number {
  if (typeof v !== "string" || !/^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/.test(v)) {
    invalid(path, 'must be a duration such as "10s", "1m30s" or "500ms"');
  }
  let ms = 0;
  for (const [, n, , unit] of v.matchAll(/(\d+(\.\d+)?)(ns|us|ms|s|m|h)/g))
    ms += Number(n) * DURATION_UNITS_MS[unit!]!;
  return Math.round(ms);
}

function envValue(v: unknown, path: string): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") return String(v);
  invalid(path, "must be a string, number, boolean or null");
}

function parseEnvironment(v: unknown, path: string): Record<string, string> {
  const env: Record<string, string> = {};
  if (v === undefined) return env;
  if (Array.isArray(v)) {
    v.forEach((item, i) => {
      const entry = asString(item, `${path}[${i}]`);
      const eq = entry.indexOf("=");
      const key = eq < 0 ? entry : entry.slice(0, eq);
      if (!ENV_KEY.test(key)) invalid(`${path}[${i}]`, "must be KEY=VALUE");
      if (key in env) invalid(`${path}[${i}]`, `duplicate variable ${key}`);
      env[key] = eq < 0 ? "" : entry.slice(eq + 1);
    });
    return env;
  }
  for (const [key, value] of Object.entries(asMap(v, path))) {
    if (!ENV_KEY.test(key)) invalid(`${path}.${key}`, "is not a valid variable name");
    env[key] = envValue(value, `${path}.${key}`);
  }
  return env;
}

function portNumber(v: unknown, path: string): number {
  const n = typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 65535) {
    if (typeof v === "string" && v.includes("-")) unsupported(path, "port ranges");
    invalid(path, "must be a port number from 1 to 65535");
  }
  return n;
}

function hostIp(v: unknown, path: string): string {
  const ip = asString(v, path);
  if (!ipAddress.safeParse(ip).success) invalid(path, `${ip} is not an IP address`);
  return ip;
}

function protocol(v: unknown, path: string): "tcp" | "udp" {
  if (v === "tcp" || v === "udp") return v;
  unsupported(path, 'protocol must be "tcp" or "udp"');
}

const BARE_PORT = "a container port without a host port; publish it as HOST:CONTAINER";

function parseShortPort(v: string | number, path: string): PortMapping {
  if (typeof v === "number") unsupported(path, BARE_PORT);
  const slash = v.lastIndexOf("/");
  const proto = slash < 0 ? "tcp" : protocol(v.slice(slash + 1), path);
  let rest = slash < 0 ? v : v.slice(0, slash);
  let ip = "127.0.0.1";
  const bracketed = /^\[([^\]]+)\]:(.*)$/.exec(rest);
  if (bracketed) {
    ip = hostIp(bracketed[1], path);
    rest = bracketed[2]!;
  }
  const parts = rest.split(":");
  if (parts.length === 3 && !bracketed) ip = hostIp(parts.shift(), path);
  if (parts.length === 1) unsupported(path, BARE_PORT);
  if (parts.length !== 2)
    invalid(path, 'must be "HOST:CONTAINER", "IP:HOST:CONTAINER" with an optional /udp');
  if (parts[0] === "") unsupported(path, BARE_PORT);
  return {
    host_ip: ip,
    host_port: portNumber(parts[0], path),
    container_port: portNumber(parts[1], path),
    protocol: proto,
  };
}

function parsePort(v: unknown, path: string): PortMapping {
  if (typeof v === "string" || typeof v === "number") return parseShortPort(v, path);
  const m = asMap(v, path);
  checkKeys(m, ["target", "published", "host_ip", "protocol"], path);
  if (m.published === undefined) unsupported(path, BARE_PORT);
  return {
    host_ip: field(m, "host_ip", path, hostIp) ?? "127.0.0.1",
    host_port: portNumber(m.published, `${path}.published`),
    container_port: portNumber(m.target, `${path}.target`),
    protocol: field(m, "protocol", path, protocol) ?? "tcp",
  };
}

/** A bind source must be absolute, free of `..`, and under one of the allowlisted directories. */
function checkBind(source: string, allowlist: readonly string[], path: string): string {
  const fail = (why: string): never => {
    throw new ComposeError("EE-COMPOSE-BIND-MOUNT", `${path}: host path ${source} ${why}`);
  };
  if (!source.startsWith("/")) fail("must be absolute");
  const parts = segments(source);
  if (parts.includes("..")) fail("must not contain ..");
  const normal = `/${parts.join("/")}`;
  const allowed = allowlist.some((dir) => {
    const d = `/${segments(dir).join("/")}`;
    return d === "/" || normal === d || normal.startsWith(`${d}/`);
  });
  if (!allowed) fail("is not under an allowed directory");
  return normal;
}

function parseVolume(
  v: unknown,
  path: string,
  declared: Set<string>,
  allowlist: readonly string[],
): VolumeMount {
  let type: unknown;
  let source: string;
  let target: string;
  let readOnly = false;
  if (typeof v === "string") {
    const parts = v.split(":");
    if (parts.length === 1) unsupported(path, "anonymous volumes; name the volume (name:/path)");
    if (parts.length > 3) invalid(path, 'must be "SOURCE:TARGET[:ro|:rw]"');
    if (parts.length === 3) {
      if (parts[2] !== "ro" && parts[2] !== "rw") unsupported(path, `mount option ${parts[2]}`);
      readOnly = parts[2] === "ro";
    }
    source = asString(parts[0], path);
    target = absolutePath(parts[1], path);
    type = /^[/.~]/.test(source) ? "bind" : "volume";
  } else {
    const m = asMap(v, path);
    checkKeys(m, ["type", "source", "target", "read_only"], path);
    type = m.type;
    source = asString(m.source, `${path}.source`);
    target = absolutePath(m.target, `${path}.target`);
    if (m.read_only !== undefined && typeof m.read_only !== "boolean")
      invalid(`${path}.read_only`, "must be a boolean");
    readOnly = m.read_only === true;
    if (type !== "volume" && type !== "bind") unsupported(`${path}.type`, 'type must be "volume" or "bind"');
  }
  if (type === "bind")
    return { type, source: checkBind(source, allowlist, path), target, read_only: readOnly };
  if (!declared.has(source)) invalid(path, `volume ${source} is not declared in the top-level volumes`);
  return { type: "volume", source, target, read_only: readOnly };
}

function parseHealthcheck(v: unknown, path: string): ComposeHealthcheck {
  const m = asMap(v, path);
  checkKeys(m, ["test", "interval", "timeout", "retries", "start_period", "disable"], path);
  let test: string[];
  if (m.disable !== undefined && typeof m.disable !== "boolean")
    invalid(`${path}.disable`, "must be a boolean");
  if (m.disable === true) test = ["NONE"];
  else if (typeof m.test === "string") test = ["CMD-SHELL", asString(m.test, `${path}.test`)];
  else {
    test = asStringList(m.test, `${path}.test`);
    const [kind, ...args] = test;
    const ok =
      (kind === "CMD" && args.length > 0) ||
      (kind === "CMD-SHELL" && args.length === 1) ||
      (kind === "NONE" && args.length === 0);
    if (!ok)
      invalid(`${path}.test`, 'must be a string, ["CMD", args...], ["CMD-SHELL", "command"] or ["NONE"]');
  }
  const retries = m.retries ?? DEFAULT_HEALTH.retries;
  if (typeof retries !== "number" || !Number.isInteger(retries) || retries < 0) {
    invalid(`${path}.retries`, "must be a non-negative integer");
  }
  return {
    test,
    interval_ms: field(m, "interval", path, parseDuration) ?? DEFAULT_HEALTH.interval_ms,
    timeout_ms: field(m, "timeout", path, parseDuration) ?? DEFAULT_HEALTH.timeout_ms,
    retries,
    start_period_ms: field(m, "start_period", path, parseDuration) ?? DEFAULT_HEALTH.start_period_ms,
  };
}

function parseBuild(v: unknown, path: string): { context: string; dockerfile: string } {
  if (typeof v === "string") return { context: contextPath(v, path), dockerfile: "Dockerfile" };
  const m = asMap(v, path);
  checkKeys(m, ["context", "dockerfile"], path);
  return {
    context: field(m, "context", path, contextPath) ?? ".",
    dockerfile: field(m, "dockerfile", path, contextPath) ?? "Dockerfile",
  };
}

function parseDependsOn(v: unknown, path: string): string[] {
  if (v === undefined) return [];
  if (Array.isArray(v)) return asStringList(v, path);
  const m = asMap(v, path);
  for (const [name, dep] of Object.entries(m)) {
    const d = asMap(dep ?? {}, `${path}.${name}`);
    checkKeys(d, ["condition"], `${path}.${name}`);
    if (d.condition !== undefined && !DEPENDS_CONDITIONS.includes(d.condition as string)) {
      unsupported(`${path}.${name}.condition`, `condition must be one of ${DEPENDS_CONDITIONS.join(", ")}`);
    }
  }
  return Object.keys(m);
}

const SERVICE_KEYS = [
  "image",
  "build",
  "command",
  "entrypoint",
  "environment",
  "ports",
  "volumes",
  "healthcheck",
  "restart",
  "depends_on",
  "working_dir",
  "user",
  "read_only",
] as const;

function parseService(
  name: string,
  v: unknown,
  declared: Set<string>,
  allowlist: readonly string[],
): ComposeService {
  const path = `services.${name}`;
  if (!SERVICE_NAME.test(name)) invalid(path, "service names must match ^[a-z0-9][a-z0-9_-]*$");
  const m = asMap(v, path);
  checkKeys(m, SERVICE_KEYS, path);
  const p = (key: string) => `${path}.${key}`;
  if (m.image === undefined && m.build === undefined) invalid(path, "needs an image or a build");
  const image = field(m, "image", path, asString);
  if (image !== undefined && /\s/.test(image)) invalid(p("image"), "must not contain whitespace");
  if (m.restart !== undefined && !RESTART.includes(m.restart as (typeof RESTART)[number])) {
    unsupported(p("restart"), `restart must be one of ${RESTART.join(", ")}`);
  }
  const list = (key: string): unknown[] => {
    if (m[key] === undefined) return [];
    if (!Array.isArray(m[key])) invalid(p(key), "must be a list");
    return m[key];
  };
  const service: ComposeService = {
    name,
    image,
    build: field(m, "build", path, parseBuild),
    command: field(m, "command", path, parseCommand),
    entrypoint: field(m, "entrypoint", path, parseCommand),
    environment: parseEnvironment(m.environment, p("environment")),
    ports: list("ports").map((port, i) => parsePort(port, `${p("ports")}[${i}]`)),
    volumes: list("volumes").map((vol, i) => parseVolume(vol, `${p("volumes")}[${i}]`, declared, allowlist)),
    healthcheck: field(m, "healthcheck", path, parseHealthcheck),
    restart: (m.restart as ComposeService["restart"] | undefined) ?? "no",
    depends_on: parseDependsOn(m.depends_on, p("depends_on")),
    working_dir: field(m, "working_dir", path, absolutePath),
    user: field(m, "user", path, asString),
    read_only: field(m, "read_only", path, asBoolean),
  };
  // Drop absent optionals so the model (and its canonical form) has no undefined-valued keys.
  for (const key of Object.keys(service) as (keyof ComposeService)[]) {
    if (service[key] === undefined) delete service[key];
  }
  return service;
}

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
