// The systemd unit for the agent, rendered from the layout (paths mapped under --root) and the data dir and
// Docker socket the config names. Each hardening line says why it is there and what the agent still needs.
// Imports installer/layout only.
import type { Layout } from "./layout.ts";

export interface UnitInputs {
  /** The agent's data dir (config data_dir, else the layout's default): the one place it writes. */
  dataDir: string;
  /** The Docker Engine socket the agent drives (config docker_socket). */
  dockerSocket: string;
}

export function renderUnit(l: Layout, inputs: UnitInputs): string {
  const sockets = [...new Set([inputs.dockerSocket, "/run/docker.sock"])].map((s) => `-${s}`).join(" ");
  return `# Written by eectl install; edits are replaced by the next \`eectl install agent\`.
[Unit]
Description=EasyEnclave agent (control-plane link, attestation, Compose workloads)
Documentation=https://github.com/easyenclave/easyenclave/blob/main/docs/installer.md
# Workloads run through the local Docker engine; start after it and the network, but do not die with
# docker.service (a running workload survives agent and engine restarts; the agent re-adopts it).
After=network-online.target docker.service
Wants=network-online.target docker.service

[Service]
Type=simple
# KEY="VALUE" lines: EASYENCLAVE_CONFIG and the --env pairs given to eectl install agent.
EnvironmentFile=${l.prefix}/etc/easyenclave/agent.env
# Through the \`current\` symlink, so upgrade and rollback switch versions without rewriting this unit.
ExecStart=${l.prefix}/opt/easyenclave/agent/current/bin/easyenclave-agent
# The agent exits non-zero when it gives up (registration attempts, connectivity probe); come back regardless.
Restart=always
RestartSec=2
# Without a cap systemd stops restarting after 5 quick failures; an agent must keep trying for as long as it runs.
StartLimitIntervalSec=0
# SIGTERM: the agent closes its CP link and API; workloads keep running (they belong to the engine).
KillMode=mixed
TimeoutStopSec=20

# Hardening. The agent runs as root: it needs the Docker socket and writes to ConfigFS-TSM for quotes.
# No setuid escalation from anything the agent execs.
NoNewPrivileges=yes
# The whole file system read-only except the paths below.
ProtectSystem=strict
# The agent's data dir (identity key, workload.json): the one place it writes.
ReadWritePaths=${inputs.dataDir}
# The Docker socket: connect(2) needs no write access, but a bind makes that explicit; "-": may be absent.
ReadWritePaths=${sockets}
# ConfigFS-TSM: a quote is a mkdir and writes under /sys/kernel/config/tsm/report, which
# ProtectKernelTunables would make read-only; "-": absent outside a TD (dev attestation).
ReadWritePaths=-/sys/kernel/config/tsm
# No user's home is ever the agent's business.
ProtectHome=yes
# Build contexts and other temp files stay private to the service and go away with it.
PrivateTmp=yes
# /proc/sys and /sys read-only (but TSM, above); no sysctl tuning from the agent.
ProtectKernelTunables=yes
ProtectKernelModules=yes
# Docker manages cgroups itself; the agent never writes them.
ProtectControlGroups=yes
RestrictSUIDSGID=yes
LockPersonality=yes
# Not set, on purpose: PrivateDevices (older TDX guests quote through /dev/tdx_guest), MemoryDenyWriteExecute
# (Node's JIT needs writable executable memory), PrivateNetwork/IPAddressDeny (the agent serves its API and
# proxies workloads).

[Install]
WantedBy=multi-user.target
`;
}
