// Waiting until the agent an install started is up: its process keeps running, and its local HTTP API
// (`GET /api/health` on api_listen) answers as the agent whose key is in the config's data_dir, registered with
// its CP. When that does not happen by the deadline, it says why: the agent's own last words when its process
// exited, else what its health says of the CP link and whether the CP accepts connections at all.
// Imports agent/config (types), agent/identity (reading the key), lib/ and installer/service.
import { connect } from "node:net";
import type { AgentConfig } from "../agent/config.ts";
import { readAgentId } from "../agent/identity.ts";
import { parseHostPort } from "../lib/host-port.ts";
import type { ServiceControl } from "./service.ts";

const POLL_MS = 250;
const HEALTH_TIMEOUT_MS = 2_000;
const CP_CONNECT_TIMEOUT_MS = 3_000;
/** How long the supervisor gets to note how an agent process ended, after it is seen dead. */
const EXIT_NOTE_MS = 2_000;

export type AgentUp =
  | { up: true; agent_id: string }
  /** exited: the agent process ended (and the supervisor restarts it in a loop); else it runs, unregistered. */
  | { up: false; exited: boolean; why: string };

interface Health {
  agent_id?: unknown;
  registered?: unknown;
  connection?: unknown;
  last_error?: unknown;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The health URL for api_listen, or null when it names no fixed port (port 0: the agent picks one). */
export function healthUrl(apiListen: string): string | null {
  const hp = parseHostPort(apiListen);
  if (!hp || hp.port === 0) return null;
  // A wildcard listen answers on loopback.
  const host = hp.host === "0.0.0.0" ? "127.0.0.1" : hp.host === "::" ? "::1" : hp.host;
  return `http://${host.includes(":") ? `[${host}]` : host}:${hp.port}/api/health`;
}

async function readHealth(url: string): Promise<Health | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) });
    return res.ok ? ((await res.json()) as Health) : null;
  } catch {
    return null;
  }
}

/** Why nothing accepts TCP connections at the CP URL's host and port, or null when something does. */
function cpUnreachable(cpUrl: string): Promise<string | null> {
  const u = new URL(cpUrl);
  const port = Number(u.port || (u.protocol === "wss:" ? 443 : 80));
  const host = u.hostname.replace(/^\[|\]$/g, "");
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: CP_CONNECT_TIMEOUT_MS });
    const done = (why: string | null) => {
      socket.destroy();
      resolve(why);
    };
    socket.once("connect", () => done(null));
    socket.once("timeout", () => done(`no answer within ${CP_CONNECT_TIMEOUT_MS / 1000} s`));
    socket.once("error", (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
  });
}

const EXIT_NOTE = /supervisor\[\d+\]: agent ((?:exited with|killed by) [^;\s]+|could not start \(.*\));/;
const SUPERVISOR_NOTE = /supervisor\[\d+\]: /;

/** How the agent process `pid` ended and its last words: its `eectl: CODE: …` line, else its last lines. */
async function howItEnded(control: ServiceControl, pid: number): Promise<string> {
  let lines = await control.outputSince(pid);
  const until = Date.now() + EXIT_NOTE_MS;
  while (control.mode === "supervisor" && !lines.some((s) => EXIT_NOTE.test(s)) && Date.now() < until) {
    await sleep(100);
    lines = await control.outputSince(pid);
  }
  const ended = lines.map((s) => EXIT_NOTE.exec(s)?.[1]).find((s) => s !== undefined) ?? "exited";
  const own = lines.filter((s) => !SUPERVISOR_NOTE.test(s));
  const words = own.findLast((s) => s.startsWith("eectl: ")) ?? own.slice(-3).join(" | ");
  const said = words === "" ? "it printed nothing" : words.slice(0, 2000);
  return `the agent process (pid ${pid}) ${ended} before it registered: ${said}`;
}

/**
 * Watches the agent a start just brought up until it is registered with its CP, its process exits, or
 * `timeoutMs` passes. Needs a fixed api_listen port (the caller checks healthUrl first).
 */
export async function waitUntilUp(
  control: ServiceControl,
  config: AgentConfig,
  url: string,
  timeoutMs: number,
): Promise<AgentUp> {
  const deadline = Date.now() + timeoutMs;
  const seconds = Math.round(timeoutMs / 1000);
  let first: number | null = null;
  let agentId: string | null = null;
  let last: Health | null = null;
  for (;;) {
    const probe = await control.probe();
    if (probe) {
      first ??= probe.pid;
      if (!probe.alive || probe.pid !== first) {
        return { up: false, exited: true, why: await howItEnded(control, first) };
      }
      // The key appears on the agent's first start; another agent on the same port answers with another id.
      agentId ??= await readAgentId(config.data_dir).catch(() => null);
      const id: string | null = agentId;
      const health: Health | null = id === null ? null : await readHealth(url);
      if (health && health.agent_id === id && id !== null) {
        if (health.registered === true) return { up: true, agent_id: id };
        last = health;
      }
    }
    if (Date.now() > deadline) break;
    await sleep(POLL_MS);
  }
  if (first === null) return { up: false, exited: true, why: `no agent process started within ${seconds} s` };
  const unreachable = await cpUnreachable(config.control_plane_url);
  const cp =
    unreachable === null
      ? `the CP accepts connections at ${config.control_plane_url}`
      : `the CP is unreachable at ${config.control_plane_url} (${unreachable})`;
  if (last === null || agentId === null) {
    return {
      up: false,
      exited: false,
      why: `the agent process (pid ${first}) runs, but ${url} did not answer as the agent of ${config.data_dir} within ${seconds} s (${cp})`,
    };
  }
  const link = `its CP link is ${String(last.connection)}${
    typeof last.last_error === "string" ? `, last error ${last.last_error}` : ""
  }`;
  return {
    up: false,
    exited: false,
    why: `agent ${agentId} runs but has not registered with its CP within ${seconds} s (${link}; ${cp})`,
  };
}
