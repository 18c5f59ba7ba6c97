// Where an installation lives on disk, for one --root: every path the installer writes, both as the installer
// sees it (`<root>/…`) and as the installed programs see it (the same, since paths inside the files are mapped
// under the root, so a root other than / is a complete, runnable installation). Imports node:path only.
import { isAbsolute, join, relative, resolve } from "node:path";

export const SERVICE_NAME = "easyenclave-agent.service";

/** A version names a directory under opt/: no separators, no dot-dot, nothing a shell or unit file would mangle. */
export const VERSION_PATTERN = /^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$/;

export interface Layout {
  root: string;
  /** What the installed files call the root: "" for /, else the absolute root. */
  prefix: string;
  agentDir: string;
  current: string;
  stateFile: string;
  etcDir: string;
  envFile: string;
  configFile: string;
  unitFile: string;
  /** systemctl enable's link, made by hand for roots systemd does not manage (an image being staged). */
  wantsLink: string;
  runDir: string;
  /** The supervisor's pid (--no-systemd). */
  pidFile: string;
  /** The agent's pid while the supervisor runs it. */
  mainPidFile: string;
  logFile: string;
  /** The default agent data dir (the config's data_dir may name another). */
  dataDir: string;
  versionDir(version: string): string;
  launcher(version?: string): string;
  /** True when `path` lies inside the root: the only places uninstall --purge may delete. */
  contains(path: string): boolean;
}

export function layout(rootArg: string): Layout {
  const root = resolve(rootArg);
  const prefix = root === "/" ? "" : root;
  const at = (...parts: string[]) => join(root, ...parts);
  const agentDir = at("opt/easyenclave/agent");
  return {
    root,
    prefix,
    agentDir,
    current: join(agentDir, "current"),
    stateFile: join(agentDir, "state.json"),
    etcDir: at("etc/easyenclave"),
    envFile: at("etc/easyenclave/agent.env"),
    configFile: at("etc/easyenclave/config.json"),
    unitFile: at("etc/systemd/system", SERVICE_NAME),
    wantsLink: at("etc/systemd/system/multi-user.target.wants", SERVICE_NAME),
    runDir: at("run"),
    pidFile: at("run/easyenclave-agent.pid"),
    mainPidFile: at("run/easyenclave-agent.main.pid"),
    logFile: at("var/log/easyenclave-agent.log"),
    dataDir: at("var/lib/easyenclave"),
    versionDir: (version) => join(agentDir, version),
    launcher: (version) => join(agentDir, version ?? "current", "bin/easyenclave-agent"),
    contains: (path) => {
      const rel = relative(root, resolve(path));
      return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel);
    },
  };
}
