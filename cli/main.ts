// The eectl command line: every program (control plane, agent, installer) and operator command is a clipanion
// command registered here. Commands live in cli/commands/, one file per command family; a command module
// imports only what its flags and help need, and loads what it runs with `await import()` (ARCHITECTURE.md,
// "How eectl is built"), so starting eectl costs little more than starting Node.
import { Builtins, Cli, type Command } from "clipanion";
import { AGENT_VERSION } from "../agent/version.ts";
import { CliError } from "../spec/errors.ts";
import { reportFailure } from "./base.ts";
import {
  AccountsCreateCommand,
  AccountsListCommand,
  AccountsShowCommand,
  EnrollmentTokensCreateCommand,
  KeysCreateCommand,
  KeysListCommand,
  KeysRevokeCommand,
} from "./commands/accounts.ts";
import { AdminTokenRotateCommand } from "./commands/admin-token.ts";
import { AgentCommand } from "./commands/agent.ts";
import {
  AgentsDrainCommand,
  AgentsListCommand,
  AgentsShowCommand,
  AgentsUndrainCommand,
  AgentsWatchCommand,
} from "./commands/agents.ts";
import { AppsListCommand, AppsRegisterCommand } from "./commands/apps.ts";
import { AttestDevInitCommand } from "./commands/attest.ts";
import { AttestVerifyCommand } from "./commands/attest-verify.ts";
import { AuditListCommand, AuditVerifyCommand } from "./commands/audit.ts";
import {
  BillingBalanceCommand,
  BillingDepositCommand,
  BillingLedgerCommand,
  BillingRatesCommand,
  BillingVerifyCommand,
} from "./commands/billing.ts";
import {
  CapacityOrdersListCommand,
  CapacityReconcileCommand,
  CapacityReservationsListCommand,
  CapacitySizesCommand,
  CapacityTargetsListCommand,
  CapacityTargetsSetCommand,
} from "./commands/capacity.ts";
import { ConfigCmdlineCommand, ConfigDriveCommand } from "./commands/config.ts";
import { ControlPlaneCommand } from "./commands/control-plane.ts";
import { DatacentersCommand } from "./commands/datacenters.ts";
import { DeployCommand, PreflightCommand } from "./commands/deploy.ts";
import {
  DeploymentsListCommand,
  DeploymentsShowCommand,
  DeploymentsUndeployCommand,
} from "./commands/deployments.ts";
import { EventsCommand } from "./commands/events.ts";
import {
  InspectAgentCommand,
  InspectDeploymentCommand,
  MachinesExportCommand,
  MachinesListCommand,
} from "./commands/inspect.ts";
import {
  InstallAgentCommand,
  InstallRollbackCommand,
  InstallStatusCommand,
  InstallUninstallCommand,
  InstallUpgradeCommand,
} from "./commands/install.ts";
import { LauncherRunCommand } from "./commands/launcher.ts";
import { LoginCommand } from "./commands/login.ts";
import { LogsCommand, StatsCommand } from "./commands/logs.ts";
import {
  MeasurementsAddCommand,
  MeasurementsApproveCommand,
  MeasurementsListCommand,
  MeasurementsRemoveCommand,
} from "./commands/measurements.ts";
import { NatsConfigCommand } from "./commands/nats.ts";

const COMMANDS = [
  ControlPlaneCommand,
  NatsConfigCommand,
  DatacentersCommand,
  AdminTokenRotateCommand,
  AgentCommand,
  ConfigCmdlineCommand,
  ConfigDriveCommand,
  AttestDevInitCommand,
  AttestVerifyCommand,
  AgentsListCommand,
  AgentsShowCommand,
  AgentsWatchCommand,
  AgentsDrainCommand,
  AgentsUndrainCommand,
  EventsCommand,
  LogsCommand,
  StatsCommand,
  DeployCommand,
  PreflightCommand,
  DeploymentsListCommand,
  DeploymentsShowCommand,
  DeploymentsUndeployCommand,
  AppsListCommand,
  AppsRegisterCommand,
  MeasurementsListCommand,
  MeasurementsAddCommand,
  MeasurementsRemoveCommand,
  MeasurementsApproveCommand,
  BillingBalanceCommand,
  BillingLedgerCommand,
  BillingRatesCommand,
  BillingDepositCommand,
  BillingVerifyCommand,
  InstallAgentCommand,
  InstallUpgradeCommand,
  InstallRollbackCommand,
  InstallStatusCommand,
  InstallUninstallCommand,
  InspectAgentCommand,
  InspectDeploymentCommand,
  MachinesListCommand,
  MachinesExportCommand,
  AccountsCreateCommand,
  AccountsListCommand,
  AccountsShowCommand,
  EnrollmentTokensCreateCommand,
  KeysCreateCommand,
  KeysListCommand,
  KeysRevokeCommand,
  LoginCommand,
  AuditListCommand,
  AuditVerifyCommand,
  CapacityTargetsSetCommand,
  CapacityTargetsListCommand,
  CapacityOrdersListCommand,
  CapacityReservationsListCommand,
  CapacityReconcileCommand,
  CapacitySizesCommand,
  LauncherRunCommand,
];

const args = process.argv.slice(2);
const cli = new Cli({ binaryLabel: "eectl", binaryName: "eectl", binaryVersion: AGENT_VERSION });
cli.register(Builtins.HelpCommand);
cli.register(Builtins.VersionCommand);
// Clipanion builds its parser over every registered command at each start, most of eectl's own start time. A
// first word that begins some command's path can only select one of those, so only they are registered
// (`--version` selects none); anything else gets them all, for --help and the error's suggestions.
const family = COMMANDS.filter((c) => c.paths?.some((path) => path[0] === args[0]));
const version = args.length === 1 && (args[0] === "--version" || args[0] === "-v");
for (const command of version ? [] : family.length ? family : COMMANDS) cli.register(command);

/** The command the line selects, or null after reporting a bad command line (the error object with --json). */
function parse(): Command | null {
  try {
    return cli.process(args);
  } catch (err) {
    const asJson = args.includes("--json");
    const usage = new CliError("EE-CLI-USAGE", err instanceof Error ? err.message : String(err));
    process.exitCode = reportFailure(usage, asJson, Cli.defaultContext);
    if (!asJson) process.stderr.write(`run "eectl --help" (or "eectl COMMAND --help") for usage\n`);
    return null;
  }
}

const command = parse();
if (command) process.exitCode = await cli.run(command);
