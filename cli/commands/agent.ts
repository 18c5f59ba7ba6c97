// `eectl agent`: runs the host agent (CP link, local HTTP API) until SIGINT/SIGTERM. The config comes from
// --config FILE, else the agent's config source chain (EASYENCLAVE_CONFIG today). May import agent/, lib/ and cli/.
import { Command, Option } from "clipanion";
import { startAgent } from "../../agent/agent.ts";
import { describeConfig, loadAgentConfig } from "../../agent/config.ts";
import { createLogger } from "../../lib/log.ts";
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

      The config is a JSON file: \`--config FILE\`, else \`$EASYENCLAVE_CONFIG\`. Keys: \`control_plane_url\`,
      \`vm_name\`, \`node_size\`, \`datacenter\`, \`api_listen\`, \`data_dir\`, \`heartbeat_interval_ms\` (default 5000)
      and \`attestation\` (\`{"provider": "dev", "dir": DIR, "mrtd"?: HEX96}\` or \`{"provider": "tsm"}\`).
      The agent's key lives in DATA_DIR/agent-key.pem; its agent_id is derived from it.
    `,
    examples: [
      ["Run with a config file", "eectl agent --config ./agent.json"],
      ["Run with the config named by the environment", "EASYENCLAVE_CONFIG=./agent.json eectl agent"],
    ],
  });

  config = Option.String("--config", {
    description: "Agent config JSON file (default: $EASYENCLAVE_CONFIG)",
  });

  async run(): Promise<number> {
    const log = createLogger("agent");
    const { source, config } = await loadAgentConfig({ configPath: this.config, env: process.env });
    log.info({ source, config: describeConfig(config) }, "agent config");
    const agent = await startAgent(config, { log });
    this.context.stdout.write(`agent ${agent.agentId}: API on ${agent.apiUrl}\n`);
    const signal = await untilSignal();
    log.info({ signal }, "stopping");
    await agent.stop();
    return 0;
  }
}
