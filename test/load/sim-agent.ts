// One simulated agent for the scale benchmark: the real CP client (agent/cp-client.ts: connection machine,
// dev-quote registration, heartbeats) with an in-memory identity and a CpCommands that runs no Docker. The
// commands see every inbound frame first, which is where the timings are taken: challenge → registered, heartbeat
// sent → heartbeat_ack, deploy frame receipt. Deploys are acknowledged preparing → running at once, and the
// flood mode keeps a window of heartbeats in flight on this agent's own socket for the throughput measurement.
// May import agent/, attestation/, spec/ and lib/ (test code: everything).
import { generateKeyPairSync } from "node:crypto";
import { performance } from "node:perf_hooks";
import { type CpClient, startCpClient } from "../../agent/cp-client.ts";
import type { Send } from "../../agent/cp-commands.ts";
import { agentIdFromPubkey, rawPublicKey } from "../../attestation/agent-key.ts";
import type { QuoteProvider } from "../../attestation/providers/provider.ts";
import { silentLogger } from "../../lib/log.ts";
import type { WorkloadReport } from "../../spec/protocol.ts";

/** Flood heartbeats carry frame ids from here up, so their acks are told apart from the machine's own. */
const FLOOD_ID_BASE = 2 ** 40;

/** Shared by every agent of one load-generator process. */
export interface SimRecorder {
  /** challenge received → registered received, ms. */
  registerMs: number[];
  /** Heartbeat sent → ack received, ms; filled only while `recordAcks` is set. */
  ackMs: number[];
  recordAcks: boolean;
  /** deployment_id → monotonic receipt time of its deploy frame (process.hrtime, ns, same clock in every process). */
  deployReceived: Map<string, number>;
}

export interface SimAgentOptions {
  url: string;
  index: number;
  heartbeatMs: number;
  quoteProvider: QuoteProvider;
  recorder: SimRecorder;
}

export interface SimAgent {
  client: CpClient;
  /** Monotonic time (process.hrtime, ns) of the latest `registered`, or null before the first. */
  registeredAt(): number | null;
  /** Keeps `window` flood heartbeats in flight, calling onAck for each answered one, until stopFlood. Registered only. */
  flood(window: number, onAck: () => void): void;
  stopFlood(): void;
}

export function simIdentity(): {
  agentId: string;
  publicKey: Uint8Array;
  privateKey: import("node:crypto").KeyObject;
} {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const raw = rawPublicKey(publicKey);
  return { agentId: agentIdFromPubkey(raw), publicKey: raw, privateKey };
}

export function startSimAgent(o: SimAgentOptions, identity: ReturnType<typeof simIdentity>): SimAgent {
  const rec = o.recorder;
  let challengeAt: number | null = null;
  let registeredAt: number | null = null;
  let heartbeatSentAt: number | null = null;
  let workload: WorkloadReport | null = null;
  let send: Send | null = null;
  let flooding: { onAck: () => void } | null = null;
  let floodId = FLOOD_ID_BASE;

  const floodOne = () => {
    send?.("heartbeat", { seq: 1, sent_at: Date.now(), workload: null }, { id: floodId++ });
  };

  const client = startCpClient({
    url: o.url,
    identity,
    registration: {
      vm_name: `sim-${process.pid}-${o.index}`,
      node_size: "standard",
      datacenter: "baremetal:local",
    },
    heartbeatMs: o.heartbeatMs,
    quoteProvider: o.quoteProvider,
    startedAt: Date.now(),
    agentVersion: "bench",
    log: silentLogger,
    commands: {
      // The clock is read only where a timing is taken: a flood ack is the measured path, and the echo's has none.
      handle(env, s) {
        send = s;
        switch (env.type) {
          case "challenge":
            challengeAt = performance.now();
            return false;
          case "registered":
            if (challengeAt !== null) rec.registerMs.push(performance.now() - challengeAt);
            challengeAt = null;
            registeredAt = Number(process.hrtime.bigint());
            return false;
          case "heartbeat_ack":
            if (env.re !== undefined && env.re >= FLOOD_ID_BASE) {
              if (flooding) {
                flooding.onAck();
                floodOne();
              }
              return true;
            }
            if (rec.recordAcks && heartbeatSentAt !== null)
              rec.ackMs.push(performance.now() - heartbeatSentAt);
            heartbeatSentAt = null;
            return false;
          case "deploy": {
            rec.deployReceived.set(env.body.deployment_id, Number(process.hrtime.bigint()));
            const re = env.id === undefined ? {} : { re: env.id };
            const { deployment_id, app } = env.body;
            s("deploy_status", { deployment_id, app, step: "preparing", at: Date.now() }, re);
            workload = { deployment_id, app, status: "healthy" };
            s("deploy_status", { deployment_id, app, step: "running", at: Date.now() }, re);
            return true;
          }
          default:
            return false;
        }
      },
      running: () => null,
      report() {
        // Called as each heartbeat (and the register frame) is built: the send time of the next ack's heartbeat.
        heartbeatSentAt = performance.now();
        return workload;
      },
      announce(s) {
        send = s;
        // What a restarted CP needs to rebuild the deployment: the agent's current step.
        if (workload) {
          const { deployment_id, app } = workload;
          s("deploy_status", { deployment_id, app, step: "running", at: Date.now() });
        }
      },
      cancelAll() {},
    },
  });

  return {
    client,
    registeredAt: () => registeredAt,
    flood(window, onAck) {
      flooding = { onAck };
      for (let i = 0; i < window; i++) floodOne();
    },
    stopFlood() {
      flooding = null;
    },
  };
}
