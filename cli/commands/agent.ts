// `eectl agent`: runs the host agent (CP link, local HTTP API) until SIGINT/SIGTERM. The config comes from the
// agent's config source chain: --config FILE or EASYENCLAVE_CONFIG, else /etc/easyenclave/config.json, a config
// drive, the kernel command line. May import agent/, lib/ and cli/; the agent itself is loaded when it runs.
import { Command, Option } from "clipanion";
import { EeCommand } from "../base.ts";
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

      First a file: \`--config FILE\`, else \`$EASYENCLAVE_CONFIG\`, else /etc/easyenclave/config.json (a named
      file must exist; the default one may be absent).

      Then a config drive: an ISO 9660 image labelled EE_CONFIG with /config.json, on /dev/sr0, /dev/sr1 or
      /dev/cdrom, or on the devices and image files listed in \`$EASYENCLAVE_CONFIG_DRIVES\` (comma-separated).

      Then the kernel command line (/proc/cmdline, or the file \`$EASYENCLAVE_CMDLINE\`): \`easyenclave.configz=\`
      (base64 of zlib-compressed JSON), else \`easyenclave.config=\` (base64 of the JSON). \`eectl config cmdline\`
      and \`eectl config drive\` make these two.

      Keys (all in spec/agent-config.md) include \`control_plane_url\`, \`vm_name\`, \`node_size\`, \`datacenter\`,
      \`api_listen\`, \`data_dir\`, \`heartbeat_interval_ms\` (default 5000) and \`attestation\`
      (\`{"provider": "dev", "dir": DIR, "mrtd"?: HEX96}\` or \`{"provider": "tsm"}\`).
      The agent's key lives in DATA_DIR/agent-key.pem; its agent_id is derived from it.
    `,
    examples: [
      ["Run with a config file", "eectl agent --config ./agent.json"],
      ["Run with the config named by the environment", "EASYENCLAVE_CONFIG=./agent.json eectl agent"],
      ["Run with the config on a (test) kernel command line", "EASYENCLAVE_CMDLINE=./cmdline eectl agent"],
    ],
  });

  config = Option.String("--config", {
    description: "Agent config JSON file (default: $EASYENCLAVE_CONFIG, then the source chain)",
  });

  async run(): Promise<number> {
    const [{ startAgent }, { describeConfig, loadAgentConfig }, { createLogger }] = await Promise.all([
      import("../../agent/agent.ts"),
      import("../../agent/config.ts"),
      import("../../lib/log.ts"),
    ]);
    const log = createLogger("agent");
    const { source, config } = await loadAgentConfig({ configPath: this.config, env: process.env });
    log.info({ source, config: describeConfig(config) }, "agent config");
    const agent = await startAgent(config, { log });
    this.context.stdout.write(`agent ${agent.agentId}: API on ${agent.apiUrl}\n`);
    // A signal stops the agent cleanly (exit 0); giving up (registration.max_attempts, the connectivity probe's
    // exit action) stops it too, then exits non-zero with the code so the service manager or VM decides.
    const outcome = await Promise.race([untilSignal(), agent.failed]);
    if (typeof outcome === "string") log.info({ signal: outcome }, "stopping");
    else log.error({ code: outcome.code }, outcome.message);
    await agent.stop();
    if (typeof outcome !== "string") throw outcome;
    return 0;
  }
}
