// The eectl command line: every program (control plane, agent, installer) and operator command is a clipanion
// command registered here. Commands live in cli/commands/, one file per command family.
import { Builtins, Cli } from "clipanion";
import { AGENT_VERSION } from "../agent/version.ts";
import { AdminTokenRotateCommand } from "./commands/admin-token.ts";
import { AgentCommand } from "./commands/agent.ts";
import { AgentsListCommand, AgentsShowCommand, AgentsWatchCommand } from "./commands/agents.ts";
import { AppsListCommand, AppsRegisterCommand } from "./commands/apps.ts";
import { AttestDevInitCommand } from "./commands/attest.ts";
import { AttestVerifyCommand } from "./commands/attest-verify.ts";
import { ConfigCmdlineCommand, ConfigDriveCommand } from "./commands/config.ts";
import { ControlPlaneCommand } from "./commands/control-plane.ts";
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
import { LogsCommand, StatsCommand } from "./commands/logs.ts";
import {
  MeasurementsAddCommand,
  MeasurementsApproveCommand,
  MeasurementsListCommand,
  MeasurementsRemoveCommand,
} from "./commands/measurements.ts";

const cli = new Cli({ binaryLabel: "eectl", binaryName: "eectl", binaryVersion: AGENT_VERSION });
cli.register(Builtins.HelpCommand);
cli.register(Builtins.VersionCommand);
for (const command of [
  ControlPlaneCommand,
  AdminTokenRotateCommand,
  AgentCommand,
  ConfigCmdlineCommand,
  ConfigDriveCommand,
  AttestDevInitCommand,
  AttestVerifyCommand,
  AgentsListCommand,
  AgentsShowCommand,
  AgentsWatchCommand,
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
  InstallAgentCommand,
  InstallUpgradeCommand,
  InstallRollbackCommand,
  InstallStatusCommand,
  InstallUninstallCommand,
  InspectAgentCommand,
  InspectDeploymentCommand,
  MachinesListCommand,
  MachinesExportCommand,
]) {
  cli.register(command);
}

cli.runExit(process.argv.slice(2));
