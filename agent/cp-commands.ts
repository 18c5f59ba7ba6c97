// The agent's answers to the control plane's requests on the WebSocket: deploy and undeploy (through the
// workload manager, with every step sent back as deploy_status), logs (batched log_chunk frames, cancellable),
// stats and snapshot (one reply). The same Workloads the local HTTP API serves, so both paths behave alike.
// Deploy and undeploy pass the CP envelope check (the agent's cp_envelope policy) before anything changes; a
// deploy's envelope is kept with the workload as its origin and reported in every deploy_status.
// May import agent/, attestation/, spec/ and lib/.
import { type EnvelopedType, type EnvelopeVerifier, originOf } from "../attestation/cp-envelope.ts";
import type { Sealed } from "../attestation/seal.ts";
import type { Logger } from "../lib/log.ts";
import { EeError, EnvelopeError, WorkloadError } from "../spec/errors.ts";
import { type RegistryAuth, registryAuthSchema } from "../spec/images.ts";
import {
  type AnyEnvelope,
  MAX_FRAME_BYTES,
  type MessageBody,
  type MessageType,
  type WorkloadReport,
} from "../spec/protocol.ts";
import type { WorkloadStatus, Workloads } from "./workload.ts";

export type Send = <T extends MessageType>(
  type: T,
  body: MessageBody<T>,
  ids?: { id?: number; re?: number },
) => void;

/** Request types this module answers; everything else stays with the connection machine. */
const HANDLED = new Set<MessageType>(["deploy", "undeploy", "logs", "cancel", "stats", "snapshot"]);

/** A log_chunk stays well under the CP's frame cap: lines are bounded, the batch is bounded in bytes. */
const CHUNK_BYTES = MAX_FRAME_BYTES / 2;
const CHUNK_LINES = 500;
const MAX_LINE_CHARS = 16 * 1024;
/** A follow flushes what it has at least this often, so a quiet workload's lines are not held back. */
const FOLLOW_FLUSH_MS = 200;

export interface CpCommandsOptions {
  workloads: Workloads;
  snapshot: () => Record<string, unknown>;
  log: Logger;
  /** Checks the CP envelope of deploy/undeploy; without one, commands are taken as they come (policy disabled). */
  envelope?: EnvelopeVerifier;
  /** Opens registry credentials sealed to this agent for a deployment (attestation/seal.ts); throws when it cannot. */
  openSealed?: (sealed: Sealed, deploymentId: string) => Uint8Array;
}

export interface CpCommands {
  /** Answers `env` when it is one of ours; returns false to hand it to the connection machine. */
  handle(env: AnyEnvelope, send: Send): boolean;
  /** The workload as heartbeats and the register snapshot report it. */
  report(): WorkloadReport | null;
  /** The workload that passed its gate and runs (what `deployed` quotes bind), or null. */
  running(): WorkloadStatus | null;
  /** Sends the current step (after a (re)registration, so the CP learns outcomes it missed). */
  announce(send: Send): void;
  /** Ends every log follow (the socket went away). */
  cancelAll(): void;
}

function statusReport(s: WorkloadStatus): WorkloadReport {
  const status =
    s.step === "running"
      ? "healthy"
      : s.step === "failed"
        ? "failed"
        : s.step === "stopping" || s.step === "stopped"
          ? "stopped"
          : "deploying";
  return { deployment_id: s.deployment_id, app: s.app, status, compose_hash: s.compose_hash };
}

function statusFrame(s: WorkloadStatus): MessageBody<"deploy_status"> {
  return {
    deployment_id: s.deployment_id,
    app: s.app,
    step: s.step,
    at: s.since,
    compose_hash: s.compose_hash,
    ...(s.images.length ? { images: s.images } : {}),
    ...(s.progress ? { progress: s.progress } : {}),
    ...(s.code ? { code: s.code } : {}),
    ...(s.message ? { message: s.message.slice(0, 1024) } : {}),
    ...(s.origin ? { origin: s.origin } : {}),
  };
}

export function createCpCommands(o: CpCommandsOptions): CpCommands {
  const follows = new Map<number, AbortController>();
  let sendNow: Send | null = null;

  // Every step of every deployment goes to the CP while a socket is up; a CP that missed some gets the
  // current step on the next registration (announce).
  o.workloads.subscribe((s) => sendNow?.("deploy_status", statusFrame(s)));

  /** Throws the refusal after logging it (codes, ids and key/MRTD fingerprints only: nothing secret is in it). */
  const verify = <T extends EnvelopedType>(type: T, body: MessageBody<T>) => {
    if (!o.envelope) return;
    try {
      const verdict = o.envelope.check(type, body);
      if (verdict.checked !== "none")
        o.log.debug({ type, deployment_id: body.deployment_id, ...verdict }, "CP envelope accepted");
    } catch (err) {
      if (err instanceof EnvelopeError)
        o.log.warn(
          {
            type,
            deployment_id: body.deployment_id,
            code: err.code,
            details: err.details,
            reason: err.message,
          },
          "refused a CP command: its envelope does not satisfy the cp_envelope policy",
        );
      throw err;
    }
  };

  /** What the CP is told of a failure: a typed error's code and message; anything else is logged, EE-INTERNAL. */
  const refusal = (err: unknown, what: string) => {
    if (err instanceof EeError) return { code: err.code, message: err.message.slice(0, 1024) };
    o.log.error({ err }, what);
    return { code: "EE-INTERNAL", message: "internal error" };
  };

  const fail = (send: Send, re: number | undefined, err: unknown) =>
    send("error", refusal(err, "request from the control plane failed"), re === undefined ? {} : { re });

  async function streamLogs(env: AnyEnvelope & { type: "logs" }, send: Send): Promise<void> {
    const abort = new AbortController();
    if (env.id !== undefined) follows.set(env.id, abort);
    const re = env.id === undefined ? {} : { re: env.id };
    let batch: MessageBody<"log_chunk">["lines"] = [];
    let bytes = 0;
    const flush = (done: boolean) => {
      if (batch.length || done) send("log_chunk", { lines: batch, done }, re);
      batch = [];
      bytes = 0;
    };
    const timer = env.body.follow ? setInterval(() => flush(false), FOLLOW_FLUSH_MS) : null;
    try {
      const lines = o.workloads.logs({
        ...(env.body.tail !== undefined ? { tail: env.body.tail } : {}),
        ...(env.body.since !== undefined ? { since: env.body.since } : {}),
        follow: env.body.follow ?? false,
        signal: abort.signal,
      });
      for await (const line of lines) {
        const text = line.text.length > MAX_LINE_CHARS ? line.text.slice(0, MAX_LINE_CHARS) : line.text;
        const size = text.length * 3 + line.service.length + 64;
        if (batch.length >= CHUNK_LINES || bytes + size > CHUNK_BYTES) flush(false);
        batch.push({ service: line.service, stream: line.stream, ts: line.ts, text });
        bytes += size;
      }
      flush(true);
    } catch (err) {
      if (abort.signal.aborted) flush(true);
      else fail(send, env.id, err);
    } finally {
      if (timer) clearInterval(timer);
      if (env.id !== undefined) follows.delete(env.id);
    }
  }

  // Opened only to hand to the pulls; a seal for another agent or deployment, or altered, is refused by code.
  const openRegistryAuth = (sealed: Sealed, deploymentId: string): RegistryAuth => {
    try {
      if (!o.openSealed) throw new Error("this agent cannot open sealed data");
      const parsed = registryAuthSchema.safeParse(
        JSON.parse(Buffer.from(o.openSealed(sealed, deploymentId)).toString()),
      );
      if (!parsed.success) throw new Error("not a registry_auth map");
      return parsed.data;
    } catch (err) {
      throw new WorkloadError(
        "EE-WORKLOAD-PULL-AUTH",
        `registry_auth could not be opened by this agent: ${(err as Error).message}`,
      );
    }
  };

  return {
    handle(env, send) {
      if (!HANDLED.has(env.type)) return false;
      sendNow = send;
      const re = env.id === undefined ? {} : { re: env.id };
      switch (env.type) {
        case "deploy": {
          const { deployment_id, app, compose, context, health, registry_auth, replaces } = env.body;
          try {
            verify("deploy", env.body);
            const origin = originOf(env.body);
            const status = o.workloads.deploy({
              deployment_id,
              app,
              compose,
              ...(origin ? { origin } : {}),
              ...(context ? { context } : {}),
              ...(health ? { health } : {}),
              ...(replaces ? { replaces } : {}),
              ...(registry_auth ? { registry_auth: openRegistryAuth(registry_auth, deployment_id) } : {}),
            });
            send("deploy_status", statusFrame(status), re);
          } catch (err) {
            // A refusal ends this deployment at the CP: it is a failed step, not a broken request.
            const { code, message } = refusal(err, "deploy failed unexpectedly");
            send("deploy_status", { deployment_id, step: "failed", at: Date.now(), code, message }, re);
          }
          return true;
        }
        case "undeploy":
          try {
            verify("undeploy", env.body);
            send("deploy_status", statusFrame(o.workloads.undeploy(env.body.deployment_id)), re);
          } catch (err) {
            fail(send, env.id, err);
          }
          return true;
        case "logs":
          void streamLogs(env, send);
          return true;
        case "cancel":
          if (env.re !== undefined) follows.get(env.re)?.abort();
          return true;
        case "stats":
          o.workloads.stats().then(
            (result) => send("reply", { result: { ...result } }, re),
            (err) => fail(send, env.id, err),
          );
          return true;
        case "snapshot":
          send("reply", { result: o.snapshot() }, re);
          return true;
        default:
          return false;
      }
    },
    report() {
      const s = o.workloads.current();
      return s ? statusReport(s) : null;
    },
    running() {
      const s = o.workloads.current();
      return s?.step === "running" ? s : null;
    },
    announce(send) {
      sendNow = send;
      const s = o.workloads.current();
      if (s) send("deploy_status", statusFrame(s));
    },
    cancelAll() {
      for (const abort of follows.values()) abort.abort();
      follows.clear();
    },
  };
}
