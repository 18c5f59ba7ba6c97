// The agent program: wires config → identity → quote provider → CP client → local HTTP API, and stops them in
// reverse. The CLI (cli/commands/agent.ts) and `npm start` both start the agent through startAgent.
// May import agent/, attestation/, machines/, spec/ and lib/; never actors/.
import { join } from "node:path";
import {
  CP_KEY_PIN_FILE,
  CP_PIN_FILE,
  createEnvelopeVerifier,
  filePin,
  type Pin,
} from "../attestation/cp-envelope.ts";
import { loadDevRootPem } from "../attestation/dev-pki.ts";
import type { QuoteProvider } from "../attestation/providers/provider.ts";
import { open } from "../attestation/seal.ts";
import { createTrustAnchors, type TrustAnchors } from "../attestation/trust.ts";
import { parseHostPort } from "../lib/host-port.ts";
import { type Logger, silentLogger } from "../lib/log.ts";
import { readCaBundle } from "../lib/tls-files.ts";
import type { ConnectionView } from "../machines/agent-connection.ts";
import { AgentExitError, ValidationError } from "../spec/errors.ts";
import type { InspectionObserver } from "../transport/inspection.ts";
import type { AgentConfig } from "./config.ts";
import { startConnectivityProbe } from "./connectivity-probe.ts";
import { startCpClient } from "./cp-client.ts";
import { createCpCommands } from "./cp-commands.ts";
import { buildHealth } from "./health.ts";
import { createHttpApi, listenHttpApi } from "./http-api.ts";
import { loadOrCreateIdentity } from "./identity.ts";
import { quoteProviderFor } from "./quote-provider.ts";
import { DockerRuntime } from "./runtime/docker.ts";
import { limitsFor } from "./runtime/limits.ts";
import type { WorkloadRuntime } from "./runtime/runtime.ts";
import { AGENT_VERSION } from "./version.ts";
import { createWorkloads } from "./workload.ts";

export interface StartAgentOptions {
  log?: Logger;
  /** Replaces the provider the config names (tests, embedded agents). */
  quoteProvider?: QuoteProvider;
  /** Replaces the Docker runtime on config.docker_socket. */
  runtime?: WorkloadRuntime;
  /** Inspects the agent's machines (connection, attestation refresh, deploy gates): `eectl agent --inspect`. */
  inspect?: InspectionObserver;
  /** How the operator sets api_listen, named when its port is busy (default: the config key). */
  apiListenSetting?: string;
}

export interface RunningAgent {
  agentId: string;
  /** Base URL of the local HTTP API, with the bound port. */
  apiUrl: string;
  /** The CP link as it is now. */
  state(): ConnectionView;
  /** Called on each change of the link's state or last error; returns the unsubscribe function. */
  onStateChange(listener: (view: ConnectionView) => void): () => void;
  /** Closes the CP socket with 1000 and the HTTP server. */
  stop(): Promise<void>;
  /**
   * Settles when the agent gives up: registration.max_attempts exhausted (EE-AGENT-REGISTRATION-EXHAUSTED) or the
   * connectivity probe's `exit` action (EE-AGENT-CONNECTIVITY). Never settles otherwise. The caller stops the
   * agent and exits non-zero; running workloads are left running.
   */
  failed: Promise<AgentExitError>;
}

export async function startAgent(config: AgentConfig, opts: StartAgentOptions = {}): Promise<RunningAgent> {
  const log = opts.log ?? silentLogger;
  const startedAt = Date.now();
  const listen = parseHostPort(config.api_listen);
  // Only reachable with a config that skipped parseAgentConfig.
  if (!listen)
    throw new ValidationError("EE-CONFIG-INVALID", "api_listen: must be host:port", { key: "api_listen" });
  // Read once, before anything starts: an unreadable CA is a config mistake (EE-TLS-INVALID), not a retry loop.
  const cpCa = config.control_plane_ca
    ? readCaBundle(config.control_plane_ca, "control_plane_ca")
    : undefined;

  const identity = await loadOrCreateIdentity(config.data_dir);
  log.info(
    { agent_id: identity.agentId, key: identity.keyPath, created: identity.created },
    "agent identity",
  );
  const quoteProvider = opts.quoteProvider ?? quoteProviderFor(config.attestation);
  if (quoteProvider.name === "dev")
    log.warn("dev attestation: quotes are signed by a development root, not by TDX");

  const runtime =
    opts.runtime ??
    new DockerRuntime({
      socketPath: config.docker_socket,
      owner: identity.agentId,
      log: log.child({ part: "docker" }),
      limits: limitsFor(config.node_size, config.workloads.limits),
    });
  const workloads = createWorkloads({
    runtime,
    dataDir: config.data_dir,
    bindAllowlist: config.bind_allowlist,
    publishedPorts: config.workloads.allow_published_ports ? "loopback" : "none",
    log: log.child({ part: "workload" }),
    ...(opts.inspect ? { inspect: opts.inspect } : {}),
  });
  // Before the CP link starts, so the first registration already reports the restored workload.
  await workloads.restore();
  let apiSecret: Uint8Array | null = null;

  const facts = {
    agentId: identity.agentId,
    vmName: config.vm_name,
    nodeSize: config.node_size,
    datacenter: config.datacenter,
    attestationProvider: quoteProvider.name,
    version: AGENT_VERSION,
    startedAt,
  };
  const snapshot = () => {
    const link = client.view();
    return {
      agent_id: facts.agentId,
      vm_name: facts.vmName,
      node_size: facts.nodeSize,
      datacenter: facts.datacenter,
      version: facts.version,
      attestation_provider: facts.attestationProvider,
      started_at: new Date(startedAt).toISOString(),
      control_plane: { state: link.state, registered: link.registered, session_id: link.sessionId },
      last_heartbeat_seq: link.heartbeatSeq,
      workload: workloads.current(),
    };
  };
  const { policy, trusted_mrtds, pin_first_seen } = config.cp_envelope;
  const keyPin = filePin(join(config.data_dir, CP_KEY_PIN_FILE), "cp_pubkey");
  const envelope = createEnvelopeVerifier({
    policy,
    agentId: identity.agentId,
    trust: cpQuoteTrust(config),
    trustedMrtds: trusted_mrtds,
    keyPin,
    ...(pin_first_seen ? { pin: filePin(join(config.data_dir, CP_PIN_FILE), "mrtd") } : {}),
  });
  log.info(
    { policy, trusted_mrtds: trusted_mrtds.length, pin_first_seen, key_pin: keyPin.path },
    "CP envelope policy for deploy/undeploy",
  );
  const commands = createCpCommands({
    workloads,
    snapshot,
    log: log.child({ part: "cp-commands" }),
    envelope,
    openSealed: (sealed, deploymentId) => open(sealed, identity.privateKey, identity.agentId, deploymentId),
  });

  let giveUp!: (err: AgentExitError) => void;
  const failed = new Promise<AgentExitError>((resolve) => {
    giveUp = resolve;
  });
  const client = startCpClient({
    maxAttempts: config.registration.max_attempts,
    commands,
    onRegistered: (body) => {
      apiSecret = body.api_secret ?? null;
      pinCpKey(keyPin, body.cp_pubkey, config.control_plane_url, log);
    },
    url: config.control_plane_url,
    ...(cpCa ? { ca: cpCa } : {}),
    identity,
    registration: {
      vm_name: config.vm_name,
      node_size: config.node_size,
      datacenter: config.datacenter,
      ...(config.bootstrap_token ? { bootstrap_token: config.bootstrap_token } : {}),
      ...(config.enrollment_token ? { enrollment_token: config.enrollment_token } : {}),
    },
    heartbeatMs: config.heartbeat_interval_ms,
    quoteProvider,
    startedAt,
    agentVersion: AGENT_VERSION,
    log: log.child({ part: "cp-client" }),
    ...(opts.inspect ? { inspect: opts.inspect } : {}),
  });

  client.subscribe((view) => {
    if (view.state !== "gave_up") return;
    const why = view.lastError ? ` (last error ${view.lastError})` : "";
    giveUp(
      new AgentExitError(
        "EE-AGENT-REGISTRATION-EXHAUSTED",
        `no registration with ${config.control_plane_url} after ${config.registration.max_attempts} attempts${why}`,
      ),
    );
  });
  const probe = config.connectivity_probe
    ? startConnectivityProbe(config.connectivity_probe, { log: log.child({ part: "probe" }), onExit: giveUp })
    : null;
  const app = createHttpApi({
    envelope,
    workloads,
    apiSecret: () => apiSecret,
    snapshot,
    health: () => buildHealth(facts, client.view(), Date.now()),
    agentPubkey: identity.publicKey,
    quoteProvider,
    log,
  });
  let server: Awaited<ReturnType<typeof listenHttpApi>>;
  try {
    server = await listenHttpApi(app, { ...listen, setting: opts.apiListenSetting });
  } catch (err) {
    probe?.stop();
    await client.stop();
    await workloads.stop();
    throw err;
  }
  log.info({ url: server.url }, "agent API listening");

  let stopping: Promise<void> | null = null;
  return {
    agentId: identity.agentId,
    apiUrl: server.url,
    state: () => client.view(),
    onStateChange: (listener) => client.subscribe(listener),
    failed,
    stop() {
      // Workloads keep running: an agent restart (or upgrade) must not take the application down.
      probe?.stop();
      stopping ??= Promise.all([client.stop(), server.close(), workloads.stop()]).then(() =>
        log.info("agent stopped"),
      );
      return stopping;
    },
  };
}

/**
 * Pins the key of the first CP this agent registers with (trust on first use; TLS and the CP's quote cover that
 * first contact). A later CP with another key is still registered with, so operators see the agent, but its commands
 * are refused with EE-ENV-KEY until an operator removes the pin file and restarts the agent.
 */
function pinCpKey(pin: Pin, cpPubkey: Uint8Array | undefined, url: string, log: Logger): void {
  if (!cpPubkey) {
    log.warn(
      { url },
      "the CP sent no identity key at registration: its commands will be refused (EE-ENV-KEY)",
    );
    return;
  }
  const key = Buffer.from(cpPubkey).toString("hex");
  let before: string | null;
  let pinned: string;
  try {
    before = pin.read();
    pinned = pin.pin(key);
  } catch (err) {
    log.error(
      { err, pin: pin.path },
      "the CP key pin cannot be read or written; CP commands will be refused",
    );
    return;
  }
  if (before === null) log.info({ cp_pubkey: key, pin: pin.path }, "CP key pinned (first registration)");
  else if (pinned !== key)
    log.warn(
      { cp_pubkey: key, pinned, pin: pin.path, url },
      "this CP's key is not the pinned one: its deploys and undeploys will be refused (EE-ENV-KEY); remove the pin file and restart the agent to trust it",
    );
}

/**
 * Roots a CP's quote must chain to: Intel's always; the dev root only when this agent itself attests with the dev
 * provider. A dev agent lives in a development cluster whose CP quotes with the same `eectl attest dev-init`
 * directory (`--attestation dev:DIR`), so its root is already the one this agent's own quotes chain to; an agent
 * on a real TD (tsm) must never accept a CP whose "TD" is a development key pair.
 */
function cpQuoteTrust(config: AgentConfig): TrustAnchors {
  if (config.attestation.provider !== "dev") return createTrustAnchors();
  return createTrustAnchors({ devRootPem: loadDevRootPem(config.attestation.dir) });
}
