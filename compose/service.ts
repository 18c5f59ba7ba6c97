// One service of a compose file, key by key: the supported keys read into the model (ComposeService), every
// other key refused by name, with the key path in every refusal. Pure: imports compose/fields and the model's
// types from compose/compose, spec/errors and zod (IP syntax), no I/O.
import { z } from "zod";
import { ComposeError } from "../spec/errors.ts";
import type { ComposeHealthcheck, ComposeService, PortMapping, VolumeMount } from "./compose.ts";
import {
  asBoolean,
  asMap,
  asString,
  asStringList,
  checkKeys,
  field,
  invalid,
  unsupported,
} from "./fields.ts";

const SERVICE_NAME = /^[a-z0-9][a-z0-9_-]*$/;
const ENV_KEY = /^[^=\0]+$/;
const RESTART = ["no", "always", "on-failure", "unless-stopped"] as const;
const DEPENDS_CONDITIONS = ["service_started", "service_healthy", "service_completed_successfully"];
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

export function parseService(
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
