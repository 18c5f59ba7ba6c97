// The agent program: wires config → identity → quote provider → CP client → local HTTP API, and stops them in
// reverse. The CLI (cli/commands/agent.ts) and `npm start` both start the agent through startAgent.
// May import agent/, attestation/, machines/, spec/ and lib/; never actors/.
import type { QuoteProvider } from "../attestation/providers/provider.ts";
import { parseHostPort } from "../lib/host-port.ts";
import { type Logger, silentLogger } from "../lib/log.ts";
import type { ConnectionView } from "../machines/agent-connection.ts";
import { ValidationError } from "../spec/errors.ts";
import type { AgentConfig } from "./config.ts";
import { startCpClient } from "./cp-client.ts";
import { buildHealth } from "./health.ts";
import { createHttpApi, listenHttpApi } from "./http-api.ts";
import { loadOrCreateIdentity } from "./identity.ts";
import { quoteProviderFor } from "./quote-provider.ts";
import { AGENT_VERSION } from "./version.ts";

export interface StartAgentOptions {
  log?: Logger;
  /** Replaces the provider the config names (tests, embedded agents). */
  quoteProvider?: QuoteProvider;
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
}

export async function startAgent(config: AgentConfig, opts: StartAgentOptions = {}): Promise<RunningAgent> {
  const log = opts.log ?? silentLogger;
  const startedAt = Date.now();
  const listen = parseHostPort(config.api_listen);
  // Only reachable with a config that skipped parseAgentConfig.
  if (!listen)
    throw new ValidationError("EE-CONFIG-INVALID", "api_listen: must be host:port", { key: "api_listen" });

  const identity = await loadOrCreateIdentity(config.data_dir);
  log.info(
    { agent_id: identity.agentId, key: identity.keyPath, created: identity.created },
    "agent identity",
  );
  const quoteProvider = opts.quoteProvider ?? quoteProviderFor(config.attestation);
  if (quoteProvider.name === "dev")
    log.warn("dev attestation: quotes are signed by a development root, not by TDX");

  const client = startCpClient({
    url: config.control_plane_url,
    identity,
    registration: { vm_name: config.vm_name, node_size: config.node_size, datacenter: config.datacenter },
    heartbeatMs: config.heartbeat_interval_ms,
    quoteProvider,
    startedAt,
    agentVersion: AGENT_VERSION,
    log: log.child({ part: "cp-client" }),
  });

  const facts = {
    agentId: identity.agentId,
    vmName: config.vm_name,
    nodeSize: config.node_size,
    datacenter: config.datacenter,
    attestationProvider: quoteProvider.name,
    version: AGENT_VERSION,
    startedAt,
  };
  const app = createHttpApi({
    health: () => buildHealth(facts, client.view(), Date.now()),
    agentPubkey: identity.publicKey,
    quoteProvider,
    log,
  });
  let server: Awaited<ReturnType<typeof listenHttpApi>>;
  try {
    server = await listenHttpApi(app, listen);
  } catch (err) {
    await client.stop();
    throw err;
  }
  log.info({ url: server.url }, "agent API listening");

  let stopping: Promise<void> | null = null;
  return {
    agentId: identity.agentId,
    apiUrl: server.url,
    state: () => client.view(),
    onStateChange: (listener) => client.subscribe(listener),
    stop() {
      stopping ??= Promise.all([client.stop(), server.close()]).then(() => log.info("agent stopped"));
      return stopping;
    },
  };
}
