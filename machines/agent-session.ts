// The control plane's view of one agent: a pure XState machine, one root actor per agent (actors/supervisor.ts).
// It imports no I/O: frames, audit records and quote verification are effects the supervisor provides with
// machine.provide(). Events carry their own receipt time (`at`), so the machine never reads a clock.
import { assign, fromPromise, type StateValue, setup } from "xstate";
import { type ErrorCode, errorCodeOf } from "../spec/errors.ts";
import type { MessageBody, WorkloadReport } from "../spec/protocol.ts";
import { topLevelStateOf } from "./top-level-state.ts";

/** Top-level states; `state` in the REST listing is exactly one of these. */
export const SESSION_STATES = [
  /** Connected and answered the challenge; its quote and registration policy are being checked. */
  "challenged",
  /** Attested and admitted; runs no workload; eligible for placement. */
  "registered",
  /** A deployment has been dispatched to it and has not passed its health gate yet. */
  "deploying",
  /** Runs a workload that passed its health gate. */
  "healthy",
  /** No heartbeat within stale_after_ms; kept so it can come back on its next heartbeat or reconnect. */
  "stale",
  /** Final: verification or policy refused it; the supervisor removes the actor. */
  "rejected",
  /** Final: stale for forget_after_ms; the supervisor removes the actor. */
  "gone",
] as const;
export type SessionState = (typeof SESSION_STATES)[number];

/** What the agent proved and declared at registration; kept so a crashed actor can be recreated from it. */
export interface AgentFacts {
  vm_name: string;
  node_size: string;
  datacenter: string;
  mrtd: string;
  rtmr: string[];
  trust_root: string;
  /** Ed25519 public key, hex: re-attestation quotes must bind it. */
  agent_pubkey: string;
  agent_version: string | null;
  /** Measurement-policy findings in `warn` mode: admitted, recorded, shown to operators. */
  policy_warnings: string[];
  /** What the CP's collateral says of the agent's platform; absent when the CP has no collateral configured. */
  collateral?: CollateralCoverage;
}

/** The collateral verdict on a platform: a TCB status when covered, else null and the reason why. */
export interface CollateralCoverage {
  fmspc: string | null;
  tcb_status: string | null;
  advisory_ids: string[];
  reason: string | null;
}

/** A register frame waiting for verification. Cleared once verified: quotes are ~5 KiB and N is large. */
export interface PendingRegistration {
  connId: number;
  sessionId: string;
  nonce: Uint8Array;
  body: MessageBody<"register">;
  at: number;
}

type Phase = "registered" | "deploying" | "healthy";

/** The live phases: heartbeats here take the supervisor's fast path; placement, re-attestation and the
 * readiness checkpoint count only these. */
export const LIVE_STATES: ReadonlySet<string> = new Set<Phase>(["registered", "deploying", "healthy"]);

export interface SessionContext {
  agentId: string;
  forgetAfterMs: number;
  /** The transport's id for the socket currently attached, or null while disconnected. */
  connId: number | null;
  sessionId: string | null;
  pending: PendingRegistration | null;
  facts: AgentFacts | null;
  /** The live phase to return to when a stale agent heartbeats again. */
  phase: Phase;
  deploymentId: string | null;
  app: string | null;
  /**
   * An update in place under way: the new deployment gated beside the healthy `deploymentId`, which it replaces
   * once healthy; the agent stays healthy throughout (the old one serves).
   */
  replacing: { deploymentId: string; app: string } | null;
  registeredAt: number | null;
  /** Why the session last left the happy path: a reason code (EE-ATT-…, EE-REG-…) or a supervisor note. */
  reason: string | null;
  /** Outcome of the latest (re-)attestation: a failed one takes the agent out of placement. */
  attestation: { status: "ok" | "failed"; at: number | null };
  /** Set when the actor was recreated from known facts rather than created by a registration. */
  restored: boolean;
  /** Its workload phase came from the agent's registration snapshot, not from a deploy this CP dispatched. */
  rehydrated: boolean;
}

/** Facts to recreate a session in a live phase (after a crash, or rehydrated from an agent snapshot). */
export interface RestoreInput {
  facts: AgentFacts;
  phase: Phase;
  connId: number | null;
  sessionId: string | null;
  deploymentId: string | null;
  app: string | null;
  registeredAt: number | null;
  reason: string;
}

export interface SessionInput {
  agentId: string;
  forgetAfterMs: number;
  register?: PendingRegistration;
  restore?: RestoreInput;
}

export type SessionEvent =
  /** A register frame that passed the connection gate (nonce, proof of possession) on connection connId. */
  | { type: "REGISTER"; registration: PendingRegistration }
  | {
      type: "HEARTBEAT";
      connId: number;
      id: number | undefined;
      seq: number;
      at: number;
      workload?: WorkloadReport | null;
    }
  /**
   * No heartbeat for stale_after_ms: sent by the supervisor's liveness sweep, which also acks the heartbeats of
   * live sessions without waking their actors (the hot path at 10k agents).
   */
  | { type: "STALE"; at: number }
  /** The socket connId closed. Staleness still comes from missing heartbeats, not from the close. */
  | { type: "DISCONNECTED"; connId: number; at: number }
  /** `replaces`: an update in place of the healthy deployment it names. */
  | { type: "DEPLOY"; deploymentId: string; app: string; at: number; replaces?: string }
  | { type: "DEPLOY_HEALTHY"; deploymentId: string; at: number }
  | { type: "DEPLOY_FAILED"; deploymentId: string; reason: string; at: number }
  | { type: "UNDEPLOYED"; deploymentId: string; at: number }
  /** A periodic re-attestation verified (ok) or failed with a reason code. */
  | { type: "REATTESTED"; at: number }
  | { type: "REATTESTATION_FAILED"; reason: ErrorCode; at: number };

/** Audit kinds the machine asks to record (actors/ maps them to event-log rows). */
export type SessionAuditKind =
  | "agent.registered"
  | "agent.rejected"
  | "agent.stale"
  | "agent.recovered"
  | "agent.forgotten"
  | "agent.deploying"
  | "agent.healthy"
  | "agent.deploy_failed"
  | "agent.undeployed"
  | "agent.reattested"
  | "agent.reattestation_failed";

function workloadPhase(w: WorkloadReport | null | undefined): Phase {
  if (w?.status === "healthy") return "healthy";
  if (w?.status === "deploying") return "deploying";
  return "registered";
}

/** When the agent was last heard from and the seq of its latest heartbeat (the registration counts as one). */
export interface Liveness {
  at: number;
  seq: number;
}

/** A HEARTBEAT event's liveness, for the noteLiveness effect. */
const heartbeatLiveness = {
  type: "noteLiveness",
  params: ({ event }: { event: SessionEvent }): Liveness =>
    event.type === "HEARTBEAT" ? { at: event.at, seq: event.seq } : { at: 0, seq: 0 },
} as const;

const verifyNotProvided = fromPromise<AgentFacts, PendingRegistration>(async () => {
  throw new Error("verifyRegistration must be provided by the supervisor");
});

export const agentSessionMachine = setup({
  types: {
    context: {} as SessionContext,
    events: {} as SessionEvent,
    input: {} as SessionInput,
  },
  actors: {
    // Provided by the supervisor: quote verification + registration policy. Resolves with the agent's facts;
    // rejects with an AttestationError / RegistrationError whose code becomes the reason.
    verifyRegistration: verifyNotProvided,
  },
  actions: {
    // Effects, provided by the supervisor; their implementations read the context and the current event.
    sendRegistered: () => {},
    ackHeartbeat: () => {},
    refuse: (_, _params: { error: unknown }) => {},
    replyUnexpected: () => {},
    record: (_, _params: { kind: SessionAuditKind }) => {},
    // Liveness (last heartbeat time and seq) is not kept in context: it lives in one place, the supervisor's
    // read model, which also takes the heartbeats acked on the fast path without waking this actor.
    noteLiveness: (_, _params: Liveness) => {},
    adoptVerified: assign(({ context }, params: { facts: AgentFacts }) => {
      const reg = context.pending;
      if (!reg) return context;
      const workload = reg.body.snapshot?.workload ?? null;
      const phase = workloadPhase(workload);
      return {
        facts: params.facts,
        pending: null,
        phase,
        deploymentId: phase === "registered" ? null : (workload?.deployment_id ?? null),
        app: phase === "registered" ? null : (workload?.app ?? null),
        registeredAt: reg.at,
        reason: null,
        attestation: { status: "ok" as const, at: reg.at },
        rehydrated: phase !== "registered",
        replacing: null,
      };
    }),
    noteRefusal: assign((_, params: { error: unknown }) => ({
      pending: null,
      reason: reasonOf(params.error),
    })),
    takeDeployment: assign(({ context, event }) =>
      event.type === "DEPLOY"
        ? { deploymentId: event.deploymentId, app: event.app, rehydrated: false }
        : context,
    ),
    startReplacing: assign(({ context, event }) =>
      event.type === "DEPLOY" ? { replacing: { deploymentId: event.deploymentId, app: event.app } } : context,
    ),
    // The switch: the new deployment is the agent's one from now on.
    takeReplacement: assign(({ context }) =>
      context.replacing
        ? { deploymentId: context.replacing.deploymentId, app: context.replacing.app, replacing: null }
        : context,
    ),
    dropReplacement: assign({ replacing: null }),
    noteDeployFailure: assign(({ context, event }) =>
      event.type === "DEPLOY_FAILED" ? { reason: event.reason } : context,
    ),
  },
  guards: {
    isCurrentConnection: ({ context, event }) => "connId" in event && event.connId === context.connId,
    isRestore: ({ context }) => context.restored,
    phaseIs: ({ context }, params: { phase: Phase }) => context.phase === params.phase,
    isCurrentDeployment: ({ context, event }) =>
      "deploymentId" in event && event.deploymentId === context.deploymentId,
    replacesCurrent: ({ context, event }) =>
      event.type === "DEPLOY" &&
      event.replaces !== undefined &&
      event.replaces === context.deploymentId &&
      context.replacing === null,
    isCurrentWhileReplacing: ({ context, event }) =>
      context.replacing !== null && "deploymentId" in event && event.deploymentId === context.deploymentId,
    isReplacement: ({ context, event }) =>
      "deploymentId" in event && event.deploymentId === context.replacing?.deploymentId,
  },
  delays: {
    forgetAfter: ({ context }) => context.forgetAfterMs,
  },
}).createMachine({
  id: "agentSession",
  context: ({ input }) => {
    const r = input.restore;
    return {
      agentId: input.agentId,
      forgetAfterMs: input.forgetAfterMs,
      connId: r?.connId ?? input.register?.connId ?? null,
      sessionId: r?.sessionId ?? input.register?.sessionId ?? null,
      pending: input.register ?? null,
      facts: r?.facts ?? null,
      phase: r?.phase ?? "registered",
      deploymentId: r?.deploymentId ?? null,
      app: r?.app ?? null,
      replacing: null,
      registeredAt: r?.registeredAt ?? null,
      reason: r?.reason ?? null,
      attestation: { status: "ok" as const, at: r?.registeredAt ?? input.register?.at ?? null },
      restored: r !== undefined,
      rehydrated: false,
    };
  },
  initial: "boot",
  on: {
    // Every new connection is challenged again, whatever the agent was doing: trust is per connection.
    REGISTER: {
      target: ".challenged",
      reenter: true,
      actions: assign(({ event }) => ({
        pending: event.registration,
        connId: event.registration.connId,
        sessionId: event.registration.sessionId,
        restored: false,
      })),
    },
    DISCONNECTED: { guard: "isCurrentConnection", actions: assign({ connId: null }) },
    REATTESTED: {
      actions: [
        assign(({ context, event }) => ({
          attestation: { status: "ok" as const, at: event.at },
          reason: context.attestation.status === "failed" ? null : context.reason,
        })),
        { type: "record", params: { kind: "agent.reattested" } },
      ],
    },
    REATTESTATION_FAILED: {
      actions: [
        assign(({ event }) => ({
          attestation: { status: "failed" as const, at: event.at },
          reason: event.reason,
        })),
        { type: "record", params: { kind: "agent.reattestation_failed" } },
      ],
    },
  },
  states: {
    // Transient: a restored actor resumes its phase, a new one starts by being verified.
    boot: {
      always: [{ guard: "isRestore", target: "resume" }, { target: "challenged" }],
    },
    // Transient: enter the live phase recorded in context.
    resume: {
      always: [
        { guard: { type: "phaseIs", params: { phase: "healthy" } }, target: "healthy" },
        { guard: { type: "phaseIs", params: { phase: "deploying" } }, target: "deploying" },
        { target: "registered" },
      ],
    },
    challenged: {
      invoke: {
        src: "verifyRegistration",
        input: ({ context }) => context.pending!,
        onDone: {
          target: "resume",
          actions: [
            // Before adoptVerified clears `pending`: a registration is a sign of life, with the agent's seq.
            {
              type: "noteLiveness",
              params: ({ context }) => ({
                at: context.pending!.at,
                seq: context.pending!.body.snapshot?.heartbeat_seq ?? 0,
              }),
            },
            { type: "adoptVerified", params: ({ event }) => ({ facts: event.output }) },
            "sendRegistered",
            { type: "record", params: { kind: "agent.registered" } },
          ],
        },
        onError: {
          target: "rejected",
          actions: [
            { type: "refuse", params: ({ event }) => ({ error: event.error }) },
            { type: "noteRefusal", params: ({ event }) => ({ error: event.error }) },
            { type: "record", params: { kind: "agent.rejected" } },
          ],
        },
      },
      on: { HEARTBEAT: { actions: "replyUnexpected" } },
    },
    registered: {
      entry: assign({ phase: "registered" as const, deploymentId: null, app: null, replacing: null }),
      on: {
        STALE: "stale",
        HEARTBEAT: { actions: [heartbeatLiveness, "ackHeartbeat"] },
        DEPLOY: {
          target: "deploying",
          actions: ["takeDeployment", { type: "record", params: { kind: "agent.deploying" } }],
        },
      },
    },
    deploying: {
      entry: assign({ phase: "deploying" as const }),
      on: {
        STALE: "stale",
        HEARTBEAT: { actions: [heartbeatLiveness, "ackHeartbeat"] },
        DEPLOY_HEALTHY: {
          guard: "isCurrentDeployment",
          target: "healthy",
          actions: { type: "record", params: { kind: "agent.healthy" } },
        },
        DEPLOY_FAILED: {
          guard: "isCurrentDeployment",
          target: "registered",
          actions: ["noteDeployFailure", { type: "record", params: { kind: "agent.deploy_failed" } }],
        },
        // Undeployed before it ever became healthy.
        UNDEPLOYED: {
          guard: "isCurrentDeployment",
          target: "registered",
          actions: { type: "record", params: { kind: "agent.undeployed" } },
        },
      },
    },
    healthy: {
      entry: assign({ phase: "healthy" as const }),
      on: {
        STALE: "stale",
        HEARTBEAT: { actions: [heartbeatLiveness, "ackHeartbeat"] },
        // Update in place: the new deployment starts beside the healthy one, which keeps serving meanwhile.
        DEPLOY: {
          guard: "replacesCurrent",
          actions: ["startReplacing", { type: "record", params: { kind: "agent.deploying" } }],
        },
        DEPLOY_HEALTHY: {
          guard: "isReplacement",
          actions: ["takeReplacement", { type: "record", params: { kind: "agent.healthy" } }],
        },
        UNDEPLOYED: [
          // The new one was undeployed before it took over: the old one carries on.
          { guard: "isReplacement", actions: "dropReplacement" },
          // The old one ended during the update: the agent is deploying the new one now.
          {
            guard: "isCurrentWhileReplacing",
            target: "deploying",
            actions: ["takeReplacement", { type: "record", params: { kind: "agent.undeployed" } }],
          },
          {
            guard: "isCurrentDeployment",
            target: "registered",
            actions: { type: "record", params: { kind: "agent.undeployed" } },
          },
        ],
        DEPLOY_FAILED: [
          // A failed update leaves the old deployment serving, untouched.
          {
            guard: "isReplacement",
            actions: ["dropReplacement", { type: "record", params: { kind: "agent.deploy_failed" } }],
          },
          {
            guard: "isCurrentWhileReplacing",
            target: "deploying",
            actions: [
              "noteDeployFailure",
              "takeReplacement",
              { type: "record", params: { kind: "agent.deploy_failed" } },
            ],
          },
          // The workload failed after it was healthy (the agent reported it).
          {
            guard: "isCurrentDeployment",
            target: "registered",
            actions: ["noteDeployFailure", { type: "record", params: { kind: "agent.deploy_failed" } }],
          },
        ],
      },
    },
    stale: {
      entry: [assign({ reason: "heartbeat timeout" }), { type: "record", params: { kind: "agent.stale" } }],
      after: { forgetAfter: "gone" },
      on: {
        HEARTBEAT: {
          target: "resume",
          actions: [
            heartbeatLiveness,
            "ackHeartbeat",
            assign({ reason: null }),
            { type: "record", params: { kind: "agent.recovered" } },
          ],
        },
      },
    },
    rejected: { type: "final" },
    gone: { type: "final", entry: { type: "record", params: { kind: "agent.forgotten" } } },
  },
});

/** The stable reason code carried by a verification failure, or EE-INTERNAL for anything untyped. */
export function reasonOf(err: unknown): ErrorCode {
  return errorCodeOf(err) ?? "EE-INTERNAL";
}

/** The top-level state name of a snapshot value (`state` in listings). */
export const topLevelState: (value: StateValue) => SessionState = topLevelStateOf;
