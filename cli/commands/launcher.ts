// `eectl launcher run`: claims launch orders for a datacenter and fulfils them with a provider (local agent
// processes, or an operator's command per order) until Ctrl-C. The loop and providers load when it runs.
import { resolve } from "node:path";
import { Command, Option } from "clipanion";
import { ValidationError } from "../../spec/errors.ts";
import { OperatorCommand } from "../operator-command.ts";
import { parsePositiveInt } from "../options.ts";
import { abortOnSignal } from "../signals.ts";

export class LauncherRunCommand extends OperatorCommand {
  static override paths = [["launcher", "run"]];
  static override usage = Command.Usage({
    category: "Capacity",
    description: "Claim launch orders for a datacenter and fulfil them",
    details: `
      Claims open launch orders for \`--datacenter\` (and \`--node-size\`, if given), up to \`--parallel\` at a
      time, each with a lease and a single-use bootstrap token, reports \`provisioning\`, and launches:

      \`--provider local\` starts \`eectl agent\` on this machine with dev attestation (\`--dev-attestation\`), the
      order's bootstrap token in its config (WORK_DIR/ORDER_ID/config.json, 0600; its log beside it) and its API
      on a free loopback port, and waits until the agent registered. Ctrl-C stops the launcher and the agents it
      started (they are its children; the reconciler orders replacements when a launcher runs again).

      \`--provider exec --command CMD\` runs \`sh -c CMD\` per order with EE_ORDER_ID, EE_DATACENTER, EE_NODE_SIZE,
      EE_BOOTSTRAP_TOKEN, EE_CP_URL, EE_CP_WS_URL and the size's preset (EE_VCPUS, EE_MEMORY_MB, EE_GPUS) in its
      environment; exit 0 means the VM is on its way (the
      order stays \`provisioning\` until its agent registers), any other exit fails the order with the output's
      tail as the reason. Ctrl-C stops running commands.

      Authenticates with EE_TOKEN (a launcher's key; the admin token for now).
    `,
    examples: [
      [
        "Local agents for local:a",
        "eectl launcher run --provider local --datacenter local:a --work-dir ./launcher --dev-attestation ./.easyenclave/dev-attestation",
      ],
      [
        "A script per order",
        "eectl launcher run --provider exec --datacenter gcp:us-central1-a --command ./boot-vm.sh",
      ],
    ],
  });
  provider = Option.String("--provider", { required: true, description: "local or exec" });
  datacenter = Option.String("--datacenter", {
    required: true,
    description: "provider:zone to claim orders for",
  });
  nodeSize = Option.String("--node-size", { description: "Claim only orders of this node size" });
  workDir = Option.String("--work-dir", { description: "local: where agent configs, data and logs go" });
  devAttestation = Option.String("--dev-attestation", {
    description: "local: the dev attestation directory",
  });
  command = Option.String("--command", { description: "exec: the command run per order (sh -c)" });
  parallel = Option.String("--parallel", { description: "Orders launched at once (default 4)" });
  pollMs = Option.String("--poll-ms", {
    description: "How often to ask for an order when none is open (default 1000)",
  });

  async run(): Promise<number> {
    const [{ runLauncher }, providers] = await Promise.all([
      import("../launcher/loop.ts"),
      import("../launcher/providers.ts"),
    ]);
    const provider = this.#provider(providers);
    const out = this.context.stdout;
    out.write(
      `launcher: claiming orders for ${this.datacenter}${this.nodeSize ? ` ${this.nodeSize}` : ""}\n`,
    );
    const client = this.client();
    const pollMs = parsePositiveInt(this.pollMs, "--poll-ms") ?? 1000;
    const parallel = parsePositiveInt(this.parallel, "--parallel") ?? 4;
    try {
      await abortOnSignal((signal) =>
        runLauncher({
          client,
          provider,
          datacenter: this.datacenter,
          ...(this.nodeSize ? { nodeSize: this.nodeSize } : {}),
          pollMs,
          parallel,
          signal,
          say: (line) => out.write(`${line}\n`),
        }),
      );
    } finally {
      // Stopped by a signal or refused by the CP (a bad token): what it started goes with it either way.
      await provider.stop();
    }
    out.write("launcher: stopped\n");
    return 0;
  }

  #provider(p: typeof import("../launcher/providers.ts")) {
    if (this.provider === "local") {
      if (!this.workDir || !this.devAttestation)
        throw new ValidationError(
          "EE-CONFIG-INVALID",
          "--provider local needs --work-dir and --dev-attestation",
        );
      // Agents resolve paths against their config's folder: hand them absolute ones.
      return p.localProvider({
        workDir: resolve(this.workDir),
        devAttestationDir: resolve(this.devAttestation),
        eectl: process.argv[1]!,
      });
    }
    if (this.provider === "exec") {
      if (!this.command) throw new ValidationError("EE-CONFIG-INVALID", "--provider exec needs --command");
      return p.execProvider({ command: this.command });
    }
    throw new ValidationError(
      "EE-CONFIG-INVALID",
      `--provider: expected local or exec, got "${this.provider}"`,
    );
  }
}
