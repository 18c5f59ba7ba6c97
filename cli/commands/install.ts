// `eectl install agent|upgrade|rollback|status|uninstall`: the agent installer's command line. Parses flags,
// calls installer/install.ts (loaded when a command runs: see cli/main.ts) and prints what it did. May import
// installer/, lib/ and cli/.

import { Command, Option } from "clipanion";
import type { InstallOutcome, InstallStatus } from "../../installer/install.ts";
import { layout } from "../../installer/layout.ts";
import { DEFAULT_START_CHECK, DEFAULT_WAIT_MS, type StartCheck } from "../../installer/start-check.ts";
import { canAccess } from "../../lib/can-access.ts";
import { EeCommand } from "../base.ts";
import { jsonFlag, parsePositiveInt } from "../options.ts";

const installer = () => import("../../installer/install.ts");

const rootFlag = () =>
  Option.String("--root", {
    required: true,
    description:
      "The file-system root to install under (/ for this host; another dir: a self-contained tree)",
  });

/** Flags of the commands that switch versions: how long the new version gets to prove it stays up. */
abstract class SwitchingCommand extends EeCommand {
  startTimeoutMs = Option.String("--start-timeout-ms", {
    description: `How long the agent process gets to appear after a start (default ${DEFAULT_START_CHECK.timeoutMs})`,
  });
  settleMs = Option.String("--settle-ms", {
    description: `How long it must then stay up (default ${DEFAULT_START_CHECK.settleMs})`,
  });
  asJson = jsonFlag("Print the outcome as JSON");

  check(): StartCheck {
    return {
      timeoutMs: parsePositiveInt(this.startTimeoutMs, "--start-timeout-ms") ?? DEFAULT_START_CHECK.timeoutMs,
      settleMs: parsePositiveInt(this.settleMs, "--settle-ms") ?? DEFAULT_START_CHECK.settleMs,
    };
  }

  report(what: string, root: string, out: InstallOutcome): void {
    this.print(this.asJson, out, (o) => {
      const how = { systemd: "systemd", supervisor: "the eectl supervisor", none: "no service manager" }[
        o.mode
      ];
      const prev = o.previous_version ? ` (previous: ${o.previous_version})` : "";
      const verb = o.changed ? what : "already installed:";
      const agent = o.agent_id ? `; agent ${o.agent_id} is registered with its CP` : "";
      return `${verb} easyenclave-agent ${o.version}${prev} under ${root}, run by ${how}${agent}\n`;
    });
  }
}

export class InstallAgentCommand extends SwitchingCommand {
  static override paths = [["install", "agent"]];
  static override usage = Command.Usage({
    category: "Installer",
    description: "Install the agent and run it as a service",
    details: `
      Installs the agent bundle under \`ROOT/opt/easyenclave/agent/VERSION\` and points \`current\` at it;
      writes \`ROOT/etc/easyenclave/agent.env\` and \`config.json\` (0600) and the systemd unit. With systemd
      running and \`--root /\`, enables and starts the unit; with \`--no-systemd\`, starts the agent under a
      detached supervisor that restarts it; otherwise only installs (and enables the unit for the root's boot).

      The bundle is \`--bundle DIR|TARBALL\`, else built from this checkout. \`--config\` is validated first: an
      invalid config installs nothing. Its relative paths (\`./agent1\`) resolve against its own folder, and the
      installed copy holds them absolute. Running the same install twice changes nothing. See docs/installer.md.

      When a service runs the agent, install then waits (\`--wait-s\`, default ${DEFAULT_WAIT_MS / 1000}) until the
      agent answers on its \`api_listen\` (\`GET /api/health\`) registered with its CP. An agent that exits
      fails the install (EE-INSTALL-START-FAILED, with the agent's own error) and is stopped; one that runs but
      does not register fails it too (EE-INSTALL-NOT-REGISTERED, saying whether the CP is reachable) and keeps
      trying. \`--no-wait\` skips this, e.g. while the CP is not up yet. An \`api_listen\` with port 0 cannot be
      found, so it is not waited for.
    `,
    examples: [
      ["Install on this host", "eectl install agent --root / --config ./agent.json"],
      [
        "Install into a dir and run it without systemd",
        "eectl install agent --root /tmp/ee --config ./agent.json --no-systemd",
      ],
      ["Install before the CP is up", "eectl install agent --root / --config ./agent.json --no-wait"],
    ],
  });

  root = rootFlag();
  version = Option.String("--version", {
    description: "Version name (default: the bundle's or package.json's)",
  });
  bundle = Option.String("--bundle", {
    description: "Agent bundle directory or .tar.gz (default: build one)",
  });
  config = Option.String("--config", { description: "Agent config JSON file to install" });
  env = Option.Array("--env", [], { description: "KEY=VALUE for agent.env (repeatable)" });
  noSystemd = Option.Boolean("--no-systemd", false, {
    description: "Run the agent under the eectl supervisor instead of systemd",
  });
  waitS = Option.String("--wait-s", {
    description: `How long to wait for the agent to register with its CP (default ${DEFAULT_WAIT_MS / 1000})`,
  });
  noWait = Option.Boolean("--no-wait", false, {
    description: "Do not wait for the agent to register (e.g. the CP is not up yet)",
  });

  async run(): Promise<number> {
    const { installAgent } = await installer();
    const waitS = parsePositiveInt(this.waitS, "--wait-s");
    const out = await installAgent({
      root: this.root,
      version: this.version,
      bundle: this.bundle,
      config: this.config,
      env: this.env,
      noSystemd: this.noSystemd,
      check: this.check(),
      waitMs: this.noWait ? false : waitS === undefined ? DEFAULT_WAIT_MS : waitS * 1000,
    });
    this.report("installed", this.root, out);
    const config = layout(this.root).configFile;
    if (!(await canAccess(config))) {
      this.context.stderr.write(
        `eectl: no agent config at ${config}: the agent will not start until one is there (--config FILE)\n`,
      );
    }
    return 0;
  }
}

export class InstallUpgradeCommand extends SwitchingCommand {
  static override paths = [["install", "upgrade"]];
  static override usage = Command.Usage({
    category: "Installer",
    description: "Install another agent version beside the current one and switch to it",
    details: `
      Installs VERSION (from \`--bundle\`, else built from this checkout), switches \`current\`, restarts the
      service and checks the agent stays up. When it does not, switches back and restarts the previous
      version, and exits 1 (EE-INSTALL-START-FAILED): a failed upgrade leaves the previous version running.
    `,
  });

  root = rootFlag();
  version = Option.String("--version", { required: true, description: "The version to switch to" });
  bundle = Option.String("--bundle", {
    description: "Agent bundle directory or .tar.gz (default: build one)",
  });

  async run(): Promise<number> {
    const { upgradeAgent } = await installer();
    const out = await upgradeAgent({
      root: this.root,
      version: this.version,
      bundle: this.bundle,
      check: this.check(),
    });
    this.report("upgraded to", this.root, out);
    return 0;
  }
}

export class InstallRollbackCommand extends SwitchingCommand {
  static override paths = [["install", "rollback"]];
  static override usage = Command.Usage({
    category: "Installer",
    description: "Switch back to the previously installed agent version",
  });

  root = rootFlag();

  async run(): Promise<number> {
    const { rollbackAgent } = await installer();
    const out = await rollbackAgent({ root: this.root, check: this.check() });
    this.report("rolled back to", this.root, out);
    return 0;
  }
}

export class InstallStatusCommand extends EeCommand {
  static override paths = [["install", "status"]];
  static override usage = Command.Usage({
    category: "Installer",
    description: "Show the installed agent version and whether it runs",
  });

  root = rootFlag();
  asJson = jsonFlag("Print {version, previous_version, running, unit_path, env_path, …} as JSON");

  async run(): Promise<number> {
    const { agentStatus } = await installer();
    this.print(this.asJson, await agentStatus(this.root), (s: InstallStatus) =>
      [
        `version: ${s.version ?? "(not installed)"}`,
        `previous_version: ${s.previous_version ?? "-"}`,
        `running: ${s.running ? `yes (pid ${s.agent_pid})` : "no"}`,
        `mode: ${s.mode ?? "-"}`,
        `unit: ${s.unit_path}`,
        `env: ${s.env_path}`,
        `config: ${s.config_path}`,
        ...(s.log_path ? [`log: ${s.log_path}`] : []),
        "",
      ].join("\n"),
    );
    return 0;
  }
}

export class InstallUninstallCommand extends EeCommand {
  static override paths = [["install", "uninstall"]];
  static override usage = Command.Usage({
    category: "Installer",
    description: "Stop the agent and remove what eectl install put there",
    details: `
      Stops the service and removes the unit, agent.env, config.json and every installed version. The agent's
      data dir (its identity key, the current workload) and log stay unless \`--purge\`; purge never deletes
      anything outside the root. Uninstalling twice succeeds.
    `,
  });

  root = rootFlag();
  purge = Option.Boolean("--purge", false, { description: "Also remove the agent's data dir and log" });

  async run(): Promise<number> {
    const { uninstallAgent } = await installer();
    await uninstallAgent({ root: this.root, purge: this.purge });
    this.context.stdout.write(`uninstalled easyenclave-agent from ${this.root}\n`);
    return 0;
  }
}
