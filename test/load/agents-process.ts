// A load generator: one process running a share of the simulated agents (sim-agent.ts), driven by the parent over
// IPC (child.ts). It also drives the echo baseline's clients, with the same frames, decode and window as the
// heartbeat flood, so the two throughput figures differ only in what the server does per message.
import { performance } from "node:perf_hooks";
import { WebSocket } from "ws";
import { createDevQuoteProvider } from "../../attestation/providers/dev.ts";
import { decodeFrame, encodeFrame } from "../../transport/frame.ts";
import { childArgs, serveRequests } from "./child.ts";
import { type Pauses, watchPauses } from "./pauses.ts";
import { startProfile } from "./profile.ts";
import { type SimAgent, type SimRecorder, simIdentity, startSimAgent } from "./sim-agent.ts";

export interface AgentsProcessArgs {
  devDir: string;
  count: number;
  heartbeatMs: number;
}

export interface FloodArgs {
  url: string;
  connections: number;
  window: number;
  warmupS: number;
  seconds: number;
}

export interface Throughput {
  messages: number;
  seconds: number;
}

// Clients started per macrotask in a storm: all of them, but without starving the sockets already open.
const STORM_CHUNK = 250;
// Polling only finds out that all are in; the times compared are each agent's own registration time.
const POLL_MS = 250;

const args = childArgs<AgentsProcessArgs>();
const quoteProvider = createDevQuoteProvider({ dir: args.devDir });
const recorder: SimRecorder = { registerMs: [], ackMs: [], recordAcks: false, deployReceived: new Map() };
const identities = Array.from({ length: args.count }, () => simIdentity());
const agents: SimAgent[] = [];
const cut = await startProfile();
const pauses = watchPauses();

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => Number(process.hrtime.bigint());

/** Resolves once every agent has registered after `afterNs` (monotonic ns). */
async function allRegistered(afterNs: number, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    let last = 0;
    let missing = 0;
    for (const a of agents) {
      const at = a.registeredAt();
      if (at === null || at <= afterNs) missing++;
      else if (at > last) last = at;
    }
    if (missing === 0) return last;
    if (performance.now() > deadline)
      throw new Error(`${missing} of ${agents.length} agents not registered after ${timeoutMs} ms`);
    await sleep(POLL_MS);
  }
}

/** Counts answered messages over `seconds` after a warm-up, with `start` keeping the window full. */
async function measure(o: FloodArgs, start: (onAck: () => void) => () => void): Promise<Throughput> {
  let acks = 0;
  const stop = start(() => acks++);
  await sleep(o.warmupS * 1000);
  const from = acks;
  const t0 = performance.now();
  await sleep(o.seconds * 1000);
  const messages = acks - from;
  const seconds = (performance.now() - t0) / 1000;
  stop();
  return { messages, seconds };
}

function heartbeatFrame(id: number): Uint8Array {
  return encodeFrame("heartbeat", { seq: 1, sent_at: Date.now(), workload: null }, { id });
}

async function openEcho(url: string, n: number): Promise<WebSocket[]> {
  return Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<WebSocket>((resolve, reject) => {
          const ws = new WebSocket(url, { perMessageDeflate: false });
          ws.binaryType = "nodebuffer";
          ws.once("open", () => resolve(ws));
          ws.once("error", reject);
        }),
    ),
  );
}

serveRequests({
  agentIds: () => identities.map((i) => i.agentId),

  /** Starts every agent at once; answers with the registration latencies once all are registered. */
  storm: async (a: { url: string; timeoutMs: number }) => {
    const t0 = now();
    for (const [i, identity] of identities.entries()) {
      if (i > 0 && i % STORM_CHUNK === 0) await new Promise((r) => setImmediate(r));
      agents.push(
        startSimAgent(
          { url: a.url, index: i, heartbeatMs: args.heartbeatMs, quoteProvider, recorder },
          identity,
        ),
      );
    }
    const last = await allRegistered(t0, a.timeoutMs);
    const registerMs = recorder.registerMs;
    recorder.registerMs = [];
    return { lastRegisteredNs: last, registerMs };
  },

  /** Every agent registered again after `afterNs` (the CP restarted): the monotonic time of the last one. */
  reregistered: (a: { afterNs: number; timeoutMs: number }) => allRegistered(a.afterNs, a.timeoutMs),

  /**
   * Heartbeat → ack latencies of the agents' own heartbeats over `ms`, how many agents registered again, and
   * this generator's own worst stalls (they delay an ack's receipt as much as the CP's do).
   */
  acks: async (a: { ms: number }): Promise<{ ackMs: number[]; reregistered: number } & Pauses> => {
    recorder.ackMs = [];
    recorder.registerMs = [];
    pauses();
    recorder.recordAcks = true;
    await sleep(a.ms);
    recorder.recordAcks = false;
    return { ackMs: recorder.ackMs, reregistered: recorder.registerMs.length, ...pauses() };
  },

  /** Heartbeats back to back on `connections` registered agents' own sockets, `window` in flight on each. */
  flood: (o: FloodArgs) =>
    measure(o, (onAck) => {
      const used = agents.filter((a) => a.client.view().state === "registered").slice(0, o.connections);
      if (used.length < o.connections) throw new Error(`only ${used.length} agents registered to flood`);
      for (const a of used) a.flood(o.window, onAck);
      return () => {
        for (const a of used) a.stopFlood();
      };
    }),

  /** The same flood against the echo server: same frame encoding, same decode of every answer. */
  echoFlood: async (o: FloodArgs) => {
    const sockets = await openEcho(o.url, o.connections);
    let running = true;
    let nextId = 1;
    const result = await measure(o, (onAck) => {
      for (const ws of sockets) {
        ws.on("message", (data: Buffer) => {
          decodeFrame(data, "agent");
          onAck();
          if (running) ws.send(heartbeatFrame(nextId++));
        });
        for (let i = 0; i < o.window; i++) ws.send(heartbeatFrame(nextId++));
      }
      return () => {
        running = false;
      };
    });
    for (const ws of sockets) ws.terminate();
    return result;
  },

  /** WebSocket handshakes per second: `concurrency` clients each opening and closing in a loop. */
  handshakes: async (a: { url: string; concurrency: number; seconds: number }) => {
    let done = 0;
    const until = performance.now() + a.seconds * 1000;
    const t0 = performance.now();
    const loop = async () => {
      while (performance.now() < until) {
        const [ws] = await openEcho(a.url, 1);
        done++;
        ws!.terminate();
      }
    };
    await Promise.all(Array.from({ length: a.concurrency }, loop));
    return { messages: done, seconds: (performance.now() - t0) / 1000 } satisfies Throughput;
  },

  /** The worst loop delay and GC pause since the previous read (a read also starts a new window). */
  pauses: (): Pauses => pauses(),

  /** Receipt times (monotonic ns) of the deploy frames seen so far, by deployment id; then forgets them. */
  deploys: () => {
    const out = Object.fromEntries(recorder.deployReceived);
    recorder.deployReceived.clear();
    return out;
  },

  /** CPU seconds this generator has used (user + system). */
  cpu: async (a: { label: string }) => {
    await cut(a.label);
    const c = process.cpuUsage();
    return (c.user + c.system) / 1e6;
  },

  stop: async () => {
    await Promise.all(agents.map((a) => a.client.stop()));
  },
});
process.send?.({ id: 0, ok: true, result: { count: identities.length } });
