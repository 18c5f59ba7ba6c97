// The supervisor: one root XState actor per agent in a Map (not spawned children: spawning copies the parent's
// children object, which is quadratic at 10k agents). It provides the session machine's effects (frames,
// audit), observes every actor for errors and recreates a crashed one from its last known facts, and removes
// actors that reach a final state. It never touches sockets or bytes: frames go by agent id through AgentLink.

import { randomBytes } from "node:crypto";
import { type Actor, createActor, fromPromise } from "xstate";
import { agentIdFromPubkey } from "../attestation/agent-key.ts";
import { DueQueue } from "../lib/due-queue.ts";
import type { Logger } from "../lib/log.ts";
import {
  type AgentFacts,
  agentSessionMachine,
  LIVE_STATES,
  type PendingRegistration,
  type RestoreInput,
  reasonOf,
  type SessionAuditKind,
  type SessionEvent,
  topLevelState,
} from "../machines/agent-session.ts";
import { NotFoundError, WS_CLOSE } from "../spec/errors.ts";
import type { WorkloadReport } from "../spec/protocol.ts";
import { ActorWatchers, type InspectionObserver } from "./actor-watchers.ts";
import type { AgentIndex } from "./agent-index.ts";
import type { AgentLink } from "./agent-link.ts";
import { extendLive } from "./attestation-settings.ts";
import { type RegistrationPolicy, verifyRegistration } from "./registration.ts";
import type { EventLog } from "./store/event-log.ts";

export interface SupervisorOptions {
  link: AgentLink;
  index: AgentIndex;
  events: EventLog;
  policy: Omit<RegistrationPolicy, "holderOf">;
  log: Logger;
  heartbeatMs: number;
  staleAfterMs: number;
  forgetAfterMs: number;
  /** The CP identity key (raw Ed25519) sent in `registered`: agents pin it and accept only envelopes it signs. */
  cpPubkey?: Uint8Array;
  /** Restarts allowed per agent within restartWindowMs before the supervisor gives up on it. */
  maxRestarts?: number;
  restartWindowMs?: number;
  now?: () => number;
}

type SessionActor = Actor<typeof agentSessionMachine>;

/**
 * What operators see in the log of an agent's life, besides the audit trail: arrivals, losses and refusals.
 * Re-attestations (every agent, every few minutes) and deploy steps (the deployments log theirs) stay audit-only.
 */
const LOGGED: Partial<Record<SessionAuditKind, { level: "info" | "warn"; message: string }>> = {
  "agent.registered": { level: "info", message: "agent registered" },
  "agent.rejected": { level: "warn", message: "agent refused" },
  "agent.stale": { level: "warn", message: "agent stale: no heartbeat within stale_after_ms" },
  "agent.recovered": { level: "info", message: "agent back: heartbeating again" },
  "agent.forgotten": { level: "info", message: "agent forgotten: stale for forget_after_ms" },
  "agent.reattestation_failed": { level: "warn", message: "agent failed re-attestation" },
};

interface Supervised {
  actor: SessionActor;
  restarts: number[];
}

export class Supervisor {
  readonly #o: Required<Omit<SupervisorOptions, "cpPubkey">> & Pick<SupervisorOptions, "cpPubkey">;
  readonly #actors = new Map<string, Supervised>();
  /** Inspector streams (GET /api/v2/agents/{id}/inspect), by agent id. */
  readonly #watchers = new ActorWatchers();
  /**
   * Each agent's API secret for this session (HMAC on its HTTP API's writes). Kept here, never in the actor's
   * context: contexts are shown to operators and the inspector.
   */
  readonly #apiSecrets = new Map<string, Uint8Array>();
  readonly #machine;
  readonly #policy: RegistrationPolicy;
  /**
   * When each live session is next checked for staleness: stale_after_ms after it was last heard from as of its
   * previous check. Heartbeats do not touch it (they only move the read model's time), so a check that finds a
   * newer heartbeat moves the due time instead of sending STALE, and each session is checked about once per
   * stale_after_ms rather than on every sweep.
   */
  readonly #liveness = new DueQueue<string>();

  readonly #sweep: NodeJS.Timeout;

  constructor(opts: SupervisorOptions) {
    this.#o = { maxRestarts: 5, restartWindowMs: 60_000, now: Date.now, ...opts };
    // Staleness is judged by this sweep rather than by a timer per actor re-armed on every heartbeat: at 10k
    // agents, heartbeats are the hot path and must not cost a machine transition each. A sweep takes only the
    // sessions that are due (#liveness), not all of them.
    this.#sweep = setInterval(() => this.sweep(), Math.max(50, Math.min(1000, this.#o.staleAfterMs / 4)));
    this.#sweep.unref();
    const { index } = opts;
    this.#policy = extendLive(opts.policy, {
      holderOf: (vmName: string) => index.holderOf(vmName, this.#o.now()),
    });
    this.#machine = this.#provideEffects();
  }

  get size(): number {
    return this.#actors.size;
  }

  get(agentId: string): SessionActor | undefined {
    return this.#actors.get(agentId)?.actor;
  }

  /** The agent's current connection, or null when it has none. */
  connOf(agentId: string): number | null {
    return this.#actors.get(agentId)?.actor.getSnapshot().context.connId ?? null;
  }

  /** The secret issued to the agent at its latest registration (signs writes to its HTTP API). */
  apiSecret(agentId: string): Uint8Array | undefined {
    return this.#apiSecrets.get(agentId);
  }

  /**
   * Streams the agent's actor's inspection events to `observer` (its present state first), following the agent
   * across actor restarts; `end` is called when the agent's actor is gone for good. Returns the detach function.
   */
  inspect(agentId: string, observer: InspectionObserver, end: () => void): () => void {
    const s = this.#actors.get(agentId);
    if (!s) throw new NotFoundError("EE-NOT-FOUND", `agent ${agentId} is not known to this control plane`);
    return this.#watchers.watch(agentId, s.actor, observer, end);
  }

  /**
   * A register frame passed the connection gate: route it to the agent's actor, creating it if new.
   * An older connection of the same agent is closed as superseded.
   */
  register(registration: PendingRegistration): string {
    const agentId = agentIdFromPubkey(registration.body.agent_pubkey);
    const existing = this.#actors.get(agentId);
    if (existing) {
      const oldConn = existing.actor.getSnapshot().context.connId;
      if (oldConn !== null && oldConn !== registration.connId) {
        this.#o.link.close(oldConn, WS_CLOSE.superseded, "EE-PROTO-SUPERSEDED");
      }
      existing.actor.send({ type: "REGISTER", registration });
    } else {
      this.#start(agentId, { register: registration }, []);
    }
    return agentId;
  }

  heartbeat(
    agentId: string,
    connId: number,
    id: number | undefined,
    seq: number,
    workload?: WorkloadReport | null,
  ): void {
    const s = this.#actors.get(agentId);
    if (!s) return;
    const at = this.#o.now();
    const snap = s.actor.getSnapshot();
    // Fast path: a live session on its current connection only needs its ack and its liveness noted.
    if (snap.context.connId === connId && LIVE_STATES.has(topLevelState(snap.value))) {
      this.#o.index.heartbeat(agentId, at, seq);
      this.#o.link.send(agentId, "heartbeat_ack", { seq, server_time: at }, { re: id, conn: connId });
      return;
    }
    // A stale agent coming back, a heartbeat before registration, an old connection: the machine decides.
    s.actor.send({ type: "HEARTBEAT", connId, id, seq, at, workload });
  }

  /** Sends STALE to every live session silent for stale_after_ms (run by a timer; exposed for tests). */
  sweep(): void {
    const now = this.#o.now();
    const { staleAfterMs } = this.#o;
    for (const agentId of this.#liveness.takeDue(now)) {
      // A session that is gone or no longer live is scheduled again when it next becomes live.
      const actor = this.#actors.get(agentId)?.actor;
      const snap = actor?.getSnapshot();
      if (!actor || !snap || !LIVE_STATES.has(topLevelState(snap.value))) continue;
      // The index holds the newest sign of life, fast path or not (a registration counts as one).
      const last = this.#o.index.get(agentId)?.last_heartbeat_at ?? 0;
      if (now - last >= staleAfterMs) actor.send({ type: "STALE", at: now });
      else this.#liveness.schedule(agentId, last + staleAfterMs);
    }
  }

  disconnected(agentId: string, connId: number): void {
    const ctx = this.#actors.get(agentId)?.actor.getSnapshot().context;
    // Only the agent's current connection: a superseded one closing says nothing about the agent.
    if (ctx?.connId === connId)
      this.#o.log.info(
        { agent_id: agentId, vm_name: ctx.facts?.vm_name ?? ctx.pending?.body.vm_name ?? null },
        "agent disconnected (stale only if it stays silent)",
      );
    this.#send(agentId, { type: "DISCONNECTED", connId, at: this.#o.now() });
  }

  send(agentId: string, event: SessionEvent): boolean {
    return this.#send(agentId, event);
  }

  /** Stops every actor (shutdown). Runtime state is not persisted: agents re-register with the next CP. */
  stopAll(): void {
    clearInterval(this.#sweep);
    this.#watchers.endAll();
    for (const [agentId, s] of this.#actors) {
      this.#actors.delete(agentId);
      s.actor.stop();
    }
  }

  #send(agentId: string, event: SessionEvent): boolean {
    const s = this.#actors.get(agentId);
    if (!s) return false;
    s.actor.send(event);
    return true;
  }

  #start(
    agentId: string,
    input: { register?: PendingRegistration; restore?: RestoreInput },
    restarts: number[],
  ): void {
    const { forgetAfterMs } = this.#o;
    const actor = createActor(this.#machine, { input: { agentId, forgetAfterMs, ...input } });
    const supervised: Supervised = { actor, restarts };
    this.#actors.set(agentId, supervised);
    this.#watchers.started(agentId, actor);
    actor.subscribe({
      next: (snap) => {
        if (this.#actors.get(agentId) !== supervised) return;
        const state = topLevelState(snap.value);
        const now = this.#o.now();
        this.#o.index.update(state, snap.context, now);
        if (LIVE_STATES.has(state) && !this.#liveness.has(agentId))
          this.#liveness.schedule(agentId, now + this.#o.staleAfterMs);
        if (snap.status === "done") this.#remove(agentId, supervised);
      },
      // An unobserved actor error is rethrown in a timer and kills Node: every actor is observed here.
      error: (err) => this.#recover(agentId, supervised, err),
    });
    actor.start();
  }

  /** Drops the agent's actor; its inspector streams end unless the actor is being recreated (`restarting`). */
  #remove(agentId: string, supervised: Supervised, restarting = false): void {
    if (this.#actors.get(agentId) !== supervised) return;
    this.#actors.delete(agentId);
    if (!restarting) this.#watchers.ended(agentId);
    this.#apiSecrets.delete(agentId);
    this.#o.index.remove(agentId);
    supervised.actor.stop();
  }

  #recover(agentId: string, crashed: Supervised, err: unknown): void {
    if (this.#actors.get(agentId) !== crashed) return;
    const ctx = crashed.actor.getSnapshot().context;
    // Read before #remove drops the index record, which holds the agent's liveness, to carry it over.
    const alive = this.#o.index.get(agentId);
    const liveness = alive?.last_heartbeat_at
      ? { at: alive.last_heartbeat_at, seq: alive.heartbeat_seq }
      : null;
    const now = this.#o.now();
    const restarts = [...crashed.restarts.filter((t) => now - t < this.#o.restartWindowMs), now];
    const reason = `actor crashed: ${err instanceof Error ? err.message : String(err)}`;
    this.#o.log.error({ agent_id: agentId, err, restarts: restarts.length }, "agent session actor crashed");
    this.#o.events.append({
      at: now,
      kind: "agent.actor_crashed",
      agent_id: agentId,
      data: { reason, restarts: restarts.length },
    });
    // Without verified facts there is nothing to restore from; with too many crashes, restoring is a loop.
    const restartable = ctx.facts !== null && restarts.length <= this.#o.maxRestarts;
    this.#remove(agentId, crashed, restartable);
    if (!ctx.facts || !restartable) {
      if (ctx.connId !== null) this.#o.link.close(ctx.connId, WS_CLOSE.internal, "EE-INTERNAL");
      return;
    }
    const phase = ctx.phase;
    this.#start(
      agentId,
      {
        restore: {
          facts: ctx.facts,
          phase,
          connId: ctx.connId,
          sessionId: ctx.sessionId,
          deploymentId: ctx.deploymentId,
          app: ctx.app,
          registeredAt: ctx.registeredAt,
          reason,
        },
      },
      restarts,
    );
    if (liveness) this.#o.index.heartbeat(agentId, liveness.at, liveness.seq);
  }

  #provideEffects() {
    const { link, events, index, log, heartbeatMs, staleAfterMs } = this.#o;
    const now = () => this.#o.now();
    const sendError = (agentId: string, conn: number | null, code: string, message: string, re?: number) => {
      if (conn !== null)
        link.send(agentId, "error", { code, message }, re === undefined ? { conn } : { re, conn });
    };
    return agentSessionMachine.provide({
      actors: {
        verifyRegistration: fromPromise<AgentFacts, PendingRegistration>(async ({ input }) =>
          verifyRegistration(this.#policy, agentIdFromPubkey(input.body.agent_pubkey), input),
        ),
      },
      actions: {
        sendRegistered: ({ context }) => {
          const facts = context.facts!;
          // A new agent taking over a vm_name whose holder went stale replaces it.
          const previous = index.agentIdForVmName(facts.vm_name);
          if (previous && previous !== context.agentId) {
            const old = this.#actors.get(previous);
            if (old) this.#remove(previous, old);
            events.append({
              at: now(),
              kind: "agent.replaced",
              agent_id: previous,
              data: { by: context.agentId },
            });
          }
          events.recordAgent({ agent_id: context.agentId, ...facts, at: now() });
          if (context.connId === null) return;
          const apiSecret = new Uint8Array(randomBytes(32));
          this.#apiSecrets.set(context.agentId, apiSecret);
          link.send(
            context.agentId,
            "registered",
            {
              api_secret: apiSecret,
              ...(this.#o.cpPubkey ? { cp_pubkey: this.#o.cpPubkey } : {}),
              agent_id: context.agentId,
              session_id: context.sessionId ?? "",
              heartbeat_ms: heartbeatMs,
              stale_after_ms: staleAfterMs,
              server_time: now(),
            },
            { conn: context.connId },
          );
        },
        noteLiveness: ({ context }, { at, seq }) => index.heartbeat(context.agentId, at, seq),
        ackHeartbeat: ({ context, event }) => {
          if (event.type !== "HEARTBEAT") return;
          link.send(
            context.agentId,
            "heartbeat_ack",
            { seq: event.seq, server_time: now() },
            { re: event.id, conn: event.connId },
          );
        },
        refuse: ({ context }, { error: err }) => {
          const code = reasonOf(err);
          const message =
            err instanceof Error && code !== "EE-INTERNAL" ? err.message : "registration failed";
          if (code === "EE-INTERNAL")
            log.error({ agent_id: context.agentId, err }, "registration verification failed unexpectedly");
          sendError(context.agentId, context.connId, code, message);
          if (context.connId !== null) link.close(context.connId, WS_CLOSE.rejected, code);
        },
        replyUnexpected: ({ context, event }) => {
          if (event.type !== "HEARTBEAT") return;
          sendError(
            context.agentId,
            event.connId,
            "EE-PROTO-UNEXPECTED",
            "heartbeat before the registration was accepted",
            event.id,
          );
        },
        record: ({ context }, { kind }) => {
          const data: Record<string, unknown> = {
            vm_name: context.facts?.vm_name ?? context.pending?.body.vm_name,
          };
          if (context.reason) data.reason = context.reason;
          if (context.deploymentId) data.deployment_id = context.deploymentId;
          if (kind === "agent.registered" && context.facts) {
            Object.assign(data, {
              node_size: context.facts.node_size,
              datacenter: context.facts.datacenter,
              mrtd: context.facts.mrtd,
              trust_root: context.facts.trust_root,
            });
          }
          events.append({ at: now(), kind, agent_id: context.agentId, data });
          const logged = LOGGED[kind];
          if (logged) {
            const extra =
              kind === "agent.registered"
                ? { rehydrated: context.rehydrated }
                : kind === "agent.stale"
                  ? { last_heartbeat_at: isoOrNull(index.get(context.agentId)?.last_heartbeat_at) }
                  : {};
            log[logged.level]({ agent_id: context.agentId, ...data, ...extra }, logged.message);
          }
          if (kind === "agent.registered" && context.facts?.policy_warnings.length) {
            events.append({
              at: now(),
              kind: "attestation.warning",
              agent_id: context.agentId,
              data: { vm_name: context.facts.vm_name, warnings: context.facts.policy_warnings },
            });
          }
        },
      },
    });
  }
}

const isoOrNull = (ms: number | null | undefined) => (ms ? new Date(ms).toISOString() : null);
