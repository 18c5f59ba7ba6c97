// The installer's operations on one --root: install, upgrade, rollback, status, uninstall. Each validates
// everything it was given before it writes anything, converges (running it twice is the same as once), and
// after a switch of versions checks that the agent stays up, switching back when it does not; `install agent`
// then waits for the agent to register with its CP (agent-up.ts). Imports agent/config (the schema),
// spec/errors and installer/ siblings.
import { mkdir, readdir, rename, rm, rmdir } from "node:fs/promises";
import { type AgentConfig, readConfigFile } from "../agent/config.ts";
import { canAccess } from "../lib/can-access.ts";
import { ConflictError, InstallError, ValidationError } from "../spec/errors.ts";
import { healthUrl, waitUntilUp } from "./agent-up.ts";
import {
  buildStaged,
  checkVersion,
  openBundle,
  readBundle,
  type StagedBundle,
  sourceVersion,
} from "./bundle.ts";
import { parseEnvPairs, renderEnvFile } from "./env-file.ts";
import { switchSymlink, writeFileAtomic } from "./fs-atomic.ts";
import { type Layout, layout } from "./layout.ts";
import {
  checkStarted,
  chooseMode,
  type ServiceControl,
  type ServiceMode,
  serviceControl,
} from "./service.ts";
import { DEFAULT_START_CHECK, DEFAULT_WAIT_MS, type StartCheck } from "./start-check.ts";
import { type InstallState, readState, writeState } from "./state.ts";
import { renderUnit } from "./unit.ts";

export interface InstallOptions {
  root: string;
  version?: string | undefined;
  /** A bundle directory or tarball; default: built from the running checkout. */
  bundle?: string | undefined;
  /** An agent config JSON file, validated before anything is written. */
  config?: string | undefined;
  env?: readonly string[] | undefined;
  noSystemd?: boolean | undefined;
  check?: StartCheck | undefined;
  /** How long to wait for the started agent to register with its CP (default DEFAULT_WAIT_MS); false: not at all. */
  waitMs?: number | false | undefined;
}

export interface InstallOutcome {
  version: string;
  previous_version: string | null;
  mode: ServiceMode;
  /** False when the installation already was exactly this. */
  changed: boolean;
  /** `install agent` only: the agent seen registered with its CP, or null when it was not waited for. */
  agent_id?: string | null;
}

/** The installed config, or null when there is none yet. */
async function installedConfig(l: Layout): Promise<AgentConfig | null> {
  return (await canAccess(l.configFile)) ? (await readConfigFile(l.configFile)).config : null;
}

/** opt/…/<version> holds a complete bundle (a directory left by an interrupted copy does not). */
function hasVersion(l: Layout, version: string): Promise<boolean> {
  return readBundle(l.versionDir(version), version).then(
    () => true,
    () => false,
  );
}

/** Makes sure opt/…/<version> holds a complete bundle; true when this call added it. */
async function ensureVersion(l: Layout, o: { version?: string | undefined; bundle?: string | undefined }) {
  if (o.version !== undefined) checkVersion(o.version);
  await mkdir(l.agentDir, { recursive: true });
  let staged: StagedBundle;
  if (o.bundle === undefined) {
    const version = checkVersion(o.version ?? (await sourceVersion()));
    if (await hasVersion(l, version)) return { version, added: false };
    staged = await buildStaged(version, l.agentDir);
  } else {
    staged = await openBundle(o.bundle, l.agentDir);
  }
  try {
    const version = staged.manifest.version;
    if (o.version !== undefined && o.version !== version) {
      throw new ValidationError(
        "EE-CONFIG-INVALID",
        `--version ${o.version}: the bundle ${o.bundle} is version ${version}`,
      );
    }
    if (await hasVersion(l, version)) return { version, added: false };
    // A directory left by an interrupted copy has no valid manifest: replace it.
    await rm(l.versionDir(version), { recursive: true, force: true });
    await rename(staged.dir, l.versionDir(version));
    return { version, added: true };
  } finally {
    await rm(staged.tmp, { recursive: true, force: true });
  }
}

/** Writes env, config and unit; true when any of them changed. */
async function writeFiles(
  l: Layout,
  env: Map<string, string>,
  raw: unknown,
  config: AgentConfig | null,
): Promise<boolean> {
  const vars = new Map([
    ["EASYENCLAVE_CONFIG", `${l.prefix}/etc/easyenclave/config.json`],
    // The Node that ran the installer (20+ by package.json engines); the launcher falls back to PATH.
    ["EASYENCLAVE_NODE", process.execPath],
    ...env,
  ]);
  let changed = await writeFileAtomic(l.envFile, renderEnvFile(vars), 0o600);
  if (raw !== undefined) {
    changed = (await writeFileAtomic(l.configFile, `${JSON.stringify(raw, null, 2)}\n`, 0o600)) || changed;
  }
  const dataDir = config?.data_dir ?? l.dataDir;
  if (l.contains(dataDir)) await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const unit = renderUnit(l, { dataDir, dockerSocket: config?.docker_socket ?? "/var/run/docker.sock" });
  return (await writeFileAtomic(l.unitFile, unit, 0o644)) || changed;
}

/**
 * Points `current` at `target`, restarts and checks the agent; when it does not stay up, points `current` back
 * at what ran before and restarts that. Returns the new state, or throws EE-INSTALL-START-FAILED.
 */
async function activate(
  l: Layout,
  control: ServiceControl,
  before: InstallState,
  target: string,
  check: StartCheck = DEFAULT_START_CHECK,
): Promise<InstallState> {
  /** Records `s` and runs its version; why it does not stay up, or null (always null with nothing to run). */
  const switchTo = async (s: InstallState): Promise<string | null> => {
    await switchSymlink(l.current, s.version);
    await writeState(l, s);
    if (control.mode === "none") return null;
    await control.restart();
    return checkStarted(control, check);
  };
  const next: InstallState = { version: target, previous_version: before.version, mode: control.mode };
  const why = await switchTo(next);
  if (why === null) return next;
  const back = await switchTo(before);
  const after =
    back === null
      ? `switched back to ${before.version}, which runs again (a failed upgrade leaves the previous version running)`
      : `switched back to ${before.version}, which does not stay up either (${back})`;
  throw new InstallError(
    "EE-INSTALL-START-FAILED",
    `version ${target} did not start: ${why}; ${after}; log: ${control.logHint}`,
  );
}

/** Removes installed versions other than the current and the previous one. */
async function prune(l: Layout, keep: InstallState): Promise<void> {
  for (const name of await readdir(l.agentDir)) {
    if (name === "current" || name === "state.json" || name.startsWith(".")) continue;
    if (name !== keep.version && name !== keep.previous_version) {
      await rm(l.versionDir(name), { recursive: true, force: true });
    }
  }
}

export async function installAgent(o: InstallOptions): Promise<InstallOutcome> {
  const l = layout(o.root);
  const env = parseEnvPairs(o.env ?? []);
  const given = o.config === undefined ? null : await readConfigFile(o.config);
  const config = given?.config ?? (await installedConfig(l));
  const mode = await chooseMode(l, o.noSystemd ?? false);
  const control = serviceControl(mode, l);
  const recorded = await readState(l);
  if (recorded && recorded.mode !== mode) await serviceControl(recorded.mode, l).stop();
  // From here on the installation runs (or is about to) the way this call says.
  const state = recorded && { ...recorded, mode };

  const { version, added } = await ensureVersion(l, o);
  const filesChanged = await writeFiles(l, env, given?.raw, config);
  let outcome: InstallOutcome;
  if (state && state.version !== version) {
    const next = await activate(l, control, state, version, o.check);
    await prune(l, next);
    outcome = { ...next, changed: true };
  } else {
    await switchSymlink(l.current, version);
    const next: InstallState = { version, previous_version: state?.previous_version ?? null, mode };
    await writeState(l, next);
    const changed = added || filesChanged || recorded?.mode !== mode;
    if (changed && (await control.running())) await control.restart();
    else await control.start();
    outcome = { ...next, changed };
  }
  return { ...outcome, agent_id: await agentUp(control, config, o.waitMs ?? DEFAULT_WAIT_MS) };
}

/**
 * Waits for the agent just started to register: its id, or null when there is nothing to wait for (no service
 * runs it here, no config, api_listen port 0, or waitMs false). An agent that exits is stopped, so a failed
 * install leaves no restart loop behind; one that runs unregistered keeps trying.
 */
async function agentUp(
  control: ServiceControl,
  config: AgentConfig | null,
  waitMs: number | false,
): Promise<string | null> {
  const url = config && healthUrl(config.api_listen);
  if (waitMs === false || control.mode === "none" || !config || !url) return null;
  const up = await waitUntilUp(control, config, url, waitMs);
  if (up.up) return up.agent_id;
  if (up.exited) {
    await control.stop();
    throw new InstallError(
      "EE-INSTALL-START-FAILED",
      `${up.why}; the service is stopped (fix that, then run install again); log: ${control.logHint}`,
    );
  }
  throw new InstallError(
    "EE-INSTALL-NOT-REGISTERED",
    `${up.why}; the agent keeps trying (install --no-wait does not wait for the CP); log: ${control.logHint}`,
  );
}

async function installed(l: Layout): Promise<InstallState> {
  const state = await readState(l);
  if (!state) {
    throw new ConflictError(
      "EE-CONFLICT-STATE",
      `no agent installed under ${l.root}; run eectl install agent --root ${l.root} first`,
    );
  }
  return state;
}

export async function upgradeAgent(o: {
  root: string;
  version: string;
  bundle?: string | undefined;
  check?: StartCheck | undefined;
}): Promise<InstallOutcome> {
  const l = layout(o.root);
  const state = await installed(l);
  const control = serviceControl(state.mode, l);
  const { version, added } = await ensureVersion(l, o);
  if (version === state.version) {
    await control.start();
    return { ...state, changed: false };
  }
  try {
    const next = await activate(l, control, state, version, o.check);
    await prune(l, next);
    return { ...next, changed: true };
  } catch (err) {
    if (added) await rm(l.versionDir(version), { recursive: true, force: true });
    throw err;
  }
}

export async function rollbackAgent(o: {
  root: string;
  check?: StartCheck | undefined;
}): Promise<InstallOutcome> {
  const l = layout(o.root);
  const state = await installed(l);
  const target = state.previous_version;
  if (target === null || !(await hasVersion(l, target))) {
    throw new ConflictError("EE-CONFLICT-STATE", `no previous version to roll back to under ${l.root}`);
  }
  const control = serviceControl(state.mode, l);
  const next = await activate(l, control, state, target, o.check);
  return { ...next, changed: true };
}

export interface InstallStatus {
  version: string | null;
  previous_version: string | null;
  running: boolean;
  unit_path: string;
  env_path: string;
  config_path: string;
  mode: ServiceMode | null;
  /** The agent's pid while it runs. */
  agent_pid: number | null;
  log_path: string | null;
}

export async function agentStatus(root: string): Promise<InstallStatus> {
  const l = layout(root);
  const state = await readState(l);
  const control = state ? serviceControl(state.mode, l) : null;
  const running = (await control?.running()) ?? false;
  return {
    version: state?.version ?? null,
    previous_version: state?.previous_version ?? null,
    running,
    unit_path: l.unitFile,
    env_path: l.envFile,
    config_path: l.configFile,
    mode: state?.mode ?? null,
    agent_pid: running ? ((await control?.probe())?.pid ?? null) : null,
    log_path: state?.mode === "supervisor" ? l.logFile : null,
  };
}

/** Removes `dir` when it is empty, so uninstall leaves no husks of folders it created. */
async function rmdirIfEmpty(dir: string): Promise<void> {
  await rmdir(dir).catch(() => undefined);
}

export async function uninstallAgent(o: { root: string; purge?: boolean | undefined }): Promise<void> {
  const l = layout(o.root);
  const state = await readState(l);
  // Without a record, a supervisor may still run from a half-finished install: its pid file says so.
  const control = serviceControl(state?.mode ?? "supervisor", l);
  const config = await installedConfig(l).catch(() => null);
  await control.stop();
  for (const file of [l.unitFile, l.wantsLink, l.envFile, l.configFile, l.pidFile, l.mainPidFile]) {
    await rm(file, { force: true });
  }
  await control.forget();
  await rm(l.agentDir, { recursive: true, force: true });
  if (o.purge) {
    for (const dir of new Set([l.dataDir, config?.data_dir ?? l.dataDir])) {
      if (l.contains(dir)) await rm(dir, { recursive: true, force: true });
    }
    await rm(l.logFile, { force: true });
  }
  for (const dir of [
    l.etcDir,
    `${l.root}/opt/easyenclave`,
    `${l.root}/etc/systemd/system/multi-user.target.wants`,
  ]) {
    await rmdirIfEmpty(dir);
  }
}
