// `eectl agent`: runs the host agent (CP link, local HTTP API) until SIGINT/SIGTERM. The config comes from the
// agent's config source chain: --config FILE, or EASYENCLAVE_CONFIG, else /etc/easyenclave/config.json, a config
// drive, the kernel command line. May import agent/, lib/ and cli/; the agent itself is loaded when it runs.
import { Command, Option } from "clipanion";
import { EeCommand } from "../base.ts";
import { hostPortFlag } from "../options.ts";
import { untilSignal } from "../signals.ts";

export class AgentCommand extends EeCommand {
  static override paths = [["agent"]];
  static override usage = Command.Usage({
    description: "Run the host agent",
    details: `
      Connects to the control plane over one WebSocket, answers its challenge with a quote that binds the CP's
      nonce and the agent's key, then heartbeats; reconnects with exponential backoff when the link drops.
      Serves the agent's local HTTP API (\`GET /api/health\`) on \`api_listen\`.

      The config is JSON, taken from the first source that holds one (the log says which).

      First a file: \`--config FILE\`, else \`$EASYENCLAVE_CONFIG\`, else /etc/easyenclave/config.json (only
      \`--config\` must exist: without it, a missing file lets the chain go on). Relative paths in a file
      resolve against the file's folder.

      Then a config drive: an ISO 9660 image labelled EE_CONFIG with /config.json, on /dev/sr0, /dev/sr1 or
      /dev/cdrom, or on the devices and image files listed in \`$EASYENCLAVE_CONFIG_DRIVES\` (comma-separated).

      Then the kernel command line (/proc/cmdline, or the file \`$EASYENCLAVE_CMDLINE\`): \`easyenclave.configz=\`
      (base64 of zlib-compressed JSON), else \`easyenclave.config=\` (base64 of the JSON). \`eectl config cmdline\`
      and \`eectl config drive\` make these two.

      Keys (all in spec/agent-config.md) include \`control_plane_url\`, \`vm_name\`, \`node_size\`, \`datacenter\`,
      \`api_listen\`, \`data_dir\`, \`heartbeat_interval_ms\` (default 5000) and \`attestation\`
      (\`{"provider": "dev", "dir": DIR, "mrtd"?: HEX96}\` or \`{"provider": "tsm"}\`).
      The agent's key lives in DATA_DIR/agent-key.pem; its agent_id is derived from it.

      TLS: a \`wss://\` \`control_plane_url\` is verified against \`control_plane_ca\` (a PEM file) when set, else
      the system's CAs; an untrusted CP certificate is logged as \`EE-TLS-UNTRUSTED\` and retried with backoff.
      Plain \`ws://\` to a host that is not loopback is refused (\`EE-CONFIG-INSECURE-TRANSPORT\`) unless
      \`"allow_insecure_transport": true\` (docs/tls.md).

      \`--inspect HOST:PORT\` serves the agent's own machines (agent-connection, attestation-refresh and each
      deploy-gate) to the Stately inspector: open http://HOST:PORT/ in a browser. Secrets (the session's API
      secret, tokens, compose texts) are scrubbed from the events.
      A busy \`api_listen\` port is \`EE-LISTEN-BUSY\` (exit 1). \`$EE_LOG_LEVEL\` sets the log level on stderr
      (trace, debug, info (default), warn, error, silent). All variables: docs/environment.md.
    `,
    examples: [
      ["Run with a config file", "eectl agent --config ./agent.json"],
      ["Run with the config named by the environment", "EASYENCLAVE_CONFIG=./agent.json eectl agent"],
      ["Run with the config on a (test) kernel command line", "EASYENCLAVE_CMDLINE=./cmdline eectl agent"],
      [
        "Watch its machines in the Stately inspector",
        "eectl agent --config ./agent.json --inspect 127.0.0.1:8091",
      ],
    ],
  });

  config = Option.String("--config", {
    description: "Agent config JSON file (default: $EASYENCLAVE_CONFIG, then the source chain)",
  });

  inspect = Option.String("--inspect", {
    description: "Serve the agent's machines to the Stately inspector on HOST:PORT (open http://HOST:PORT/)",
  });

  async run(): Promise<number> {
    const [{ startAgent }, { describeConfig, loadAgentConfig }, { createLogger }] = await Promise.all([
      import("../../agent/agent.ts"),
      import("../../agent/config.ts"),
      import("../../lib/log.ts"),
    ]);
    const log = createLogger("agent");
    const inspectAt = this.inspect === undefined ? null : hostPortFlag(this.inspect, "--inspect");
    const { source, config } = await loadAgentConfig({ configPath: this.config, env: process.env });
    log.info({ source, config: describeConfig(config) }, "agent config");
    const inspector = inspectAt ? await serveAgentInspector(inspectAt) : null;
    let agent: Awaited<ReturnType<typeof startAgent>>;
    try {
      agent = await startAgent(config, { log, ...(inspector ? { inspect: inspector.observer } : {}) });
    } catch (err) {
      await inspector?.server.close();
      throw err;
    }
    this.context.stdout.write(`agent ${agent.agentId}: API on ${agent.apiUrl}\n`);
    if (inspector)
      this.context.stdout.write(
        `Stately inspector: open ${inspector.server.url} (events on ${inspector.server.wsUrl})\n`,
      );
    // A signal stops the agent cleanly (exit 0); giving up (registration.max_attempts, the connectivity probe's
    // exit action) stops it too, then exits non-zero with the code so the service manager or VM decides.
    const outcome = await Promise.race([untilSignal(), agent.failed]);
    if (typeof outcome === "string") log.info({ signal: outcome }, "stopping");
    else log.error({ code: outcome.code }, outcome.message);
    await agent.stop();
    await inspector?.server.close();
    if (typeof outcome !== "string") throw outcome;
    return 0;
  }
}

/** The inspector's server and the observer feeding it; loaded only with --inspect. */
async function serveAgentInspector(at: { host: string; port: number }) {
  const { serveInspector } = await import("../../transport/inspector-server.ts");
  const { statelyObserver } = await import("../../transport/inspection.ts");
  const server = await serveInspector(at.host, at.port);
  return { server, observer: await statelyObserver((event) => server.send(event)) };
}
