// The agent's configuration: the schema (zod), the source chain that finds it, and a loggable view of it.
// Sources (agent/config-sources/) are tried in order and the first one that holds a config wins: a JSON file,
// an EE_CONFIG config drive, the kernel command line. Every failure is a ValidationError EE-CONFIG-INVALID
// naming the source and the key. Relative paths resolve against the config file's folder (config-paths.ts).
// May import spec/, lib/, agent/config-paths and agent/config-sources/.
import { z } from "zod";
import { parseHostPort } from "../lib/host-port.ts";
import { isLoopbackHost } from "../lib/loopback.ts";
import { ValidationError } from "../spec/errors.ts";
import {
  bootstrapTokenSchema,
  datacenterSchema,
  measurementHexSchema,
  nodeSizeSchema,
  vmNameSchema,
} from "../spec/protocol.ts";
import { resolveConfigPaths } from "./config-paths.ts";
import { cmdlineSource, DEFAULT_CMDLINE, PARAM_CONFIGZ } from "./config-sources/cmdline.ts";
import { DEFAULT_DRIVES, DRIVE_LABEL, driveSource } from "./config-sources/drive.ts";
import { DEFAULT_CONFIG_FILE, fileSource } from "./config-sources/file.ts";
import type { ConfigSource } from "./config-sources/source.ts";
import { LIMIT_PRESETS } from "./runtime/limits.ts";

export const DEFAULT_HEARTBEAT_MS = 5000;

function isCpUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return (
      (u.protocol === "ws:" || u.protocol === "wss:") && !u.search && !u.hash && !u.username && !u.password
    );
  } catch {
    return false;
  }
}

const attestationSchema = z.discriminatedUnion(
  "provider",
  [
    z.strictObject({
      provider: z.literal("dev"),
      dir: z.string().min(1, "must be a directory path"),
      mrtd: measurementHexSchema.optional(),
    }),
    z.strictObject({ provider: z.literal("tsm") }),
  ],
  { error: 'must be {"provider": "dev", "dir": DIR, "mrtd"?: HEX96} or {"provider": "tsm"}' },
);

const limitPresetSchema = z.strictObject({
  memory_mb: z
    .number()
    .int()
    .min(16)
    .max(16 * 1024 * 1024),
  cpus: z.number().min(0.01).max(1024),
  pids: z.number().int().min(16).max(4_194_304),
});

/** How workload containers run: published-port policy and the limit presets by node_size. */
const workloadsSchema = z.strictObject({
  /** false: a compose with `ports:` is refused (EE-COMPOSE-PORTS); true: published on 127.0.0.1 only. */
  allow_published_ports: z.boolean().default(false),
  /** Presets by node_size, over the built-in ones (agent/runtime/limits.ts). */
  limits: z.record(nodeSizeSchema, limitPresetSchema).default({}),
});

export const agentConfigSchema = z.strictObject({
  control_plane_url: z
    .string()
    .refine(isCpUrl, "must be a ws:// or wss:// URL without query, fragment or credentials")
    // The connect path is appended to it, so a trailing slash would double up.
    .transform((s) => s.replace(/\/+$/, "")),
  /** PEM CA bundle trusted for a wss:// CP's certificate instead of the system's CAs (a private CA). */
  control_plane_ca: z.string().min(1, "must be a PEM file path").optional(),
  /** Allow plain ws:// to a CP that is not on loopback: the session secret and workloads would cross in clear. */
  allow_insecure_transport: z.boolean().default(false),
  vm_name: vmNameSchema,
  node_size: nodeSizeSchema,
  datacenter: datacenterSchema,
  /** A launch order's single-use token (set by a launcher): sent at registration, consumed by the CP. */
  bootstrap_token: bootstrapTokenSchema.optional(),
  api_listen: z.string().refine((s) => parseHostPort(s) !== null, "must be host:port (port 0..65535)"),
  data_dir: z.string().min(1, "must be a directory path"),
  heartbeat_interval_ms: z
    .number()
    .int("must be an integer")
    .min(100, "must be at least 100")
    .max(600_000, "must be at most 600000")
    .default(DEFAULT_HEARTBEAT_MS),
  attestation: attestationSchema,
  /** Single-use token from a provider (`eet_…`), presented at registration to bind this agent to its account. */
  enrollment_token: z
    .string()
    .regex(/^eet_[0-9a-f]{24}_[A-Za-z0-9_-]{43}$/, "must be an enrollment token (eet_…)")
    .optional(),
  /** Host directories workloads may bind-mount (absolute paths); none by default. */
  bind_allowlist: z
    .array(
      z
        .string()
        .regex(/^\/[^\0]*$/, "must be an absolute path")
        .refine((p) => !p.split("/").includes(".."), "must not contain .."),
    )
    .max(32)
    .default([]),
  /** The Docker Engine API socket workloads run through. */
  docker_socket: z.string().min(1).default("/var/run/docker.sock"),
  /** Registration retries: exponential backoff (bounded by the connection machine) and how many attempts. */
  registration: z
    .strictObject({
      /** Consecutive failed attempts (connect, register) before the agent exits non-zero; 0: never give up. */
      max_attempts: z.number().int().min(0).max(1_000_000).default(0),
    })
    .default({ max_attempts: 0 }),
  /** An optional probe of the network path the agent depends on (e.g. a tunnel), with an action after N failures. */
  connectivity_probe: z
    .strictObject({
      url: z
        .string()
        .url("must be an http(s) URL")
        .refine((u) => /^https?:/.test(u), "must be http or https"),
      interval_ms: z.number().int().min(1000).max(3_600_000).default(30_000),
      timeout_ms: z.number().int().min(100).max(60_000).default(5_000),
      failure_threshold: z.number().int().min(1).max(10_000).default(5),
      /** log: only log; exit: the agent exits non-zero (its service manager or VM decides what next). */
      action: z.enum(["log", "exit"]).default("log"),
    })
    .optional(),
  /**
   * The CP attestation envelope on CP→agent writes (deploy, undeploy). The agent pins the CP key of its first
   * registration (DATA_DIR/cp-key-pin.json); every envelope must be signed by it (EE-ENV-KEY).
   */
  cp_envelope: z
    .strictObject({
      /**
       * signed: every command carries an envelope signed by the pinned CP key (a quote is checked when present);
       * required: the same, and the CP's quote must be there; optional: WebSocket commands without one are taken
       * (rollouts; HTTP writes still need one); disabled: nothing checked (development only).
       */
      policy: z.enum(["signed", "required", "optional", "disabled"]).default("signed"),
      /** CP MRTDs to trust (lowercase hex); empty: any MRTD whose quote verifies, subject to pinning. */
      trusted_mrtds: z.array(measurementHexSchema).max(64).default([]),
      /** Pin the first CP MRTD seen (kept in the data dir); a different one later is refused. */
      pin_first_seen: z.boolean().default(false),
    })
    .default({ policy: "signed", trusted_mrtds: [], pin_first_seen: false }),
  workloads: workloadsSchema.default({ allow_published_ports: false, limits: {} }),
});

export type AgentConfig = z.output<typeof agentConfigSchema>;
export type AttestationConfig = AgentConfig["attestation"];

/** One finding against a config: the key (dotted path, or `<root>`) and what is wrong with it. */
export interface ConfigIssue {
  key: string;
  message: string;
}

function issuesOf(error: z.ZodError): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of error.issues) {
    const at = issue.path.map(String);
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) out.push({ key: [...at, key].join("."), message: "unknown key" });
    } else {
      out.push({ key: at.join(".") || "<root>", message: issue.message });
    }
  }
  return out;
}

/**
 * Validates a raw config value read from `source`, with relative paths resolved against `baseDir` (null: a
 * source without a folder, where they are refused; default: the working directory, for configs a program
 * builds); throws EE-CONFIG-INVALID listing every bad key.
 */
export function parseAgentConfig(
  raw: unknown,
  source: string,
  baseDir: string | null = process.cwd(),
): AgentConfig {
  const resolved = resolveConfigPaths(raw, baseDir);
  const parsed = agentConfigSchema.safeParse(resolved.raw, {
    error: (iss) => (iss.code === "invalid_type" && iss.input === undefined ? "is required" : undefined),
  });
  const issues = [
    ...resolved.issues,
    ...(parsed.success ? crossKeyIssues(parsed.data) : issuesOf(parsed.error)),
  ];
  if (parsed.success && issues.length === 0) {
    refuseInsecureTransport(parsed.data, source);
    return parsed.data;
  }
  const text = issues.map((i) => `${i.key}: ${i.message}`).join("; ");
  throw new ValidationError("EE-CONFIG-INVALID", `${source}: ${text}`, { source, issues });
}

/** Rules between keys, checked once each key is valid on its own. */
function crossKeyIssues(cfg: AgentConfig): ConfigIssue[] {
  // A CA on a plain ws:// URL would look like protection that is not there.
  if (cfg.control_plane_ca !== undefined && !cfg.control_plane_url.startsWith("wss:"))
    return [{ key: "control_plane_ca", message: "applies to a wss:// control_plane_url only" }];
  return [];
}

/**
 * Plain ws:// leaves the host only with allow_insecure_transport: it would carry the session's API secret, deploy
 * commands and compose secrets in clear. Loopback never leaves the host, so `npm start` needs no flag.
 */
function refuseInsecureTransport(cfg: AgentConfig, source: string): void {
  const url = new URL(cfg.control_plane_url);
  if (url.protocol !== "ws:" || cfg.allow_insecure_transport || isLoopbackHost(url.hostname)) return;
  throw new ValidationError(
    "EE-CONFIG-INSECURE-TRANSPORT",
    `${source}: control_plane_url: plain ws:// to ${url.hostname}, which is not loopback, would send the ` +
      "session secret and workloads in clear; use wss:// (with control_plane_ca for a private CA), or set " +
      '"allow_insecure_transport": true on a network you trust',
    { source, key: "control_plane_url", host: url.hostname },
  );
}

/**
 * A named config file, read and checked the way the agent reads it (for the installer and `eectl config`).
 * `raw` has its relative paths made absolute against the file's folder, so a copy of it written elsewhere (the
 * installed config, a config drive, a kernel parameter) still names the same files.
 */
export async function readConfigFile(path: string): Promise<{ raw: unknown; config: AgentConfig }> {
  const src = fileSource(path);
  const found = await src.read();
  const config = parseAgentConfig(found?.raw, src.name, found?.baseDir ?? null);
  return { raw: resolveConfigPaths(found?.raw, found?.baseDir ?? null).raw, config };
}

export type { ConfigSource } from "./config-sources/source.ts";

export interface LoadedConfig {
  /** Where the config came from, as precisely as known (e.g. `cmdline:/proc/cmdline easyenclave.configz`). */
  source: string;
  config: AgentConfig;
}

export interface ChainOptions {
  /** `--config FILE`: must exist (the only source whose absence is an error). */
  configPath?: string | undefined;
  /** Read for EASYENCLAVE_CONFIG, EASYENCLAVE_CONFIG_DRIVES and EASYENCLAVE_CMDLINE. */
  env: NodeJS.ProcessEnv;
}

/**
 * The ordered sources: a file (--config, which must exist; else EASYENCLAVE_CONFIG or the default path, either
 * of which may be absent),
 * then each config drive (EASYENCLAVE_CONFIG_DRIVES, comma-separated, else the usual CD-ROM devices), then the
 * kernel command line (EASYENCLAVE_CMDLINE, else /proc/cmdline).
 */
export function configSources(opts: ChainOptions): ConfigSource[] {
  // EASYENCLAVE_CONFIG only moves the chain's first place: like the default path, it may be absent.
  const first = opts.configPath
    ? fileSource(opts.configPath)
    : fileSource(opts.env.EASYENCLAVE_CONFIG || DEFAULT_CONFIG_FILE, { optional: true });
  const drives = (opts.env.EASYENCLAVE_CONFIG_DRIVES ?? "")
    .split(",")
    .map((d) => d.trim())
    .filter((d) => d !== "");
  const cmdline = opts.env.EASYENCLAVE_CMDLINE;
  return [
    first,
    ...(drives.length > 0 ? drives : DEFAULT_DRIVES).map(driveSource),
    cmdline ? cmdlineSource(cmdline) : cmdlineSource(DEFAULT_CMDLINE, { optional: true }),
  ];
}

/** Reads the sources in order and returns the first config found, validated, with where it came from. */
export async function loadFromChain(sources: readonly ConfigSource[]): Promise<LoadedConfig> {
  for (const src of sources) {
    const found = await src.read();
    if (found === null) continue;
    const origin = found.origin ?? src.name;
    return { source: origin, config: parseAgentConfig(found.raw, origin, found.baseDir ?? null) };
  }
  const tried = sources.map((s) => s.name).join(", ") || "none";
  throw new ValidationError(
    "EE-CONFIG-INVALID",
    `no agent config found (sources tried: ${tried}); pass --config FILE or set EASYENCLAVE_CONFIG, ` +
      `attach an ${DRIVE_LABEL} config drive, or boot with ${PARAM_CONFIGZ}= (see eectl config --help)`,
    { source: null, tried: sources.map((s) => s.name) },
  );
}

export function loadAgentConfig(opts: ChainOptions): Promise<LoadedConfig> {
  return loadFromChain(configSources(opts));
}

/**
 * A copy of the config that is safe to log. Built field by field, so a secret added to the schema later stays
 * out of logs until someone decides how to show it.
 */
export function describeConfig(cfg: AgentConfig): Record<string, unknown> {
  return {
    control_plane_url: cfg.control_plane_url,
    control_plane_ca: cfg.control_plane_ca ?? null,
    allow_insecure_transport: cfg.allow_insecure_transport,
    vm_name: cfg.vm_name,
    node_size: cfg.node_size,
    datacenter: cfg.datacenter,
    api_listen: cfg.api_listen,
    data_dir: cfg.data_dir,
    heartbeat_interval_ms: cfg.heartbeat_interval_ms,
    attestation:
      cfg.attestation.provider === "dev"
        ? { provider: "dev", dir: cfg.attestation.dir, mrtd: cfg.attestation.mrtd ?? null }
        : { provider: "tsm" },
    bind_allowlist: cfg.bind_allowlist,
    docker_socket: cfg.docker_socket,
    registration: cfg.registration,
    // The probe URL may carry a token in its query: only its origin is shown.
    connectivity_probe: cfg.connectivity_probe
      ? { ...cfg.connectivity_probe, url: new URL(cfg.connectivity_probe.url).origin }
      : null,
    cp_envelope: cfg.cp_envelope,
    workloads: {
      allow_published_ports: cfg.workloads.allow_published_ports,
      limits: { ...LIMIT_PRESETS, ...cfg.workloads.limits },
    },
  };
}
