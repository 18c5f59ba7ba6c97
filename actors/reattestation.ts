// Periodic re-attestation: every interval each registered, connected agent is sent an `attest` request with a
// fresh nonce and must answer with a quote bound for purpose `refresh` (or `deployed`, binding the compose hash
// of the workload it runs — required when the CP placed a healthy deployment there), verified like a
// registration's and with the measurements it registered with. The verdict goes to the agent's actor (REATTESTED or
// REATTESTATION_FAILED); a failed agent stays connected but out of placement until a later success. Due times
// sit in a DueQueue fed by the read model's transitions, so a tick costs O(due), not O(agents).
import { randomBytes } from "node:crypto";
import { DueQueue } from "../lib/due-queue.ts";
import type { Logger } from "../lib/log.ts";
import { LIVE_STATES } from "../machines/agent-session.ts";
import { AttestationError } from "../spec/errors.ts";
import type { MessageBody } from "../spec/protocol.ts";
import type { AgentIndex, Transition } from "./agent-index.ts";
import type { AgentLink } from "./agent-link.ts";
import { type RegistrationPolicy, verifyBoundQuote } from "./registration.ts";
import type { Supervisor } from "./supervisor.ts";

interface Pending {
  id: number;
  connId: number;
  nonce: Uint8Array;
  deadline: number;
}

export interface ReattestorOptions {
  supervisor: Supervisor;
  index: AgentIndex;
  link: AgentLink;
  policy: Pick<RegistrationPolicy, "trust" | "measurement" | "collateral" | "trusted">;
  log: Logger;
  intervalMs: number;
  timeoutMs: number;
  /** The compose hash of the healthy deployment the CP placed on the agent, or null when it runs none. */
  expectedWorkloadHash?: (agentId: string) => string | null;
  now?: () => number;
}

export class Reattestor {
  readonly #o: Required<ReattestorOptions>;
  readonly #pending = new Map<string, Pending>();
  /** When each live agent is next due. */
  readonly #due = new DueQueue<string>();
  readonly #tickMs: number;
  #timer: NodeJS.Timeout | null = null;
  #offTransition: (() => void) | null = null;

  constructor(opts: ReattestorOptions) {
    this.#o = { now: Date.now, expectedWorkloadHash: () => null, ...opts };
    this.#tickMs = Math.max(50, Math.min(1000, Math.floor(this.#o.intervalMs / 10)));
  }

  /** Ticks a tenth of the interval apart (at most a second), so requests spread out. */
  start(): void {
    this.#offTransition = this.#o.index.onTransition((t) => this.#onTransition(t));
    // Agents live before start (none in the CP, which starts this first): one pass, never again.
    for (const rec of this.#o.index.values()) {
      if (LIVE_STATES.has(rec.state))
        this.#due.schedule(rec.agent_id, (rec.registered_at ?? this.#o.now()) + this.#o.intervalMs);
    }
    this.#timer = setInterval(() => this.scan(), this.#tickMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#offTransition?.();
    this.#offTransition = null;
  }

  /** Sends due requests and fails the ones past their deadline. */
  scan(): void {
    const now = this.#o.now();
    for (const [agentId, p] of this.#pending) {
      if (now > p.deadline) {
        this.#pending.delete(agentId);
        this.#fail(agentId, new AttestationError("EE-ATT-REFRESH-TIMEOUT"));
      }
    }
    for (const agentId of this.#due.takeDue(now)) {
      const rec = this.#o.index.get(agentId);
      const connId = this.#o.supervisor.connOf(agentId);
      // Gone: its next registration schedules it again.
      if (!rec?.connected || connId === null) continue;
      if (!LIVE_STATES.has(rec.state) || this.#pending.has(agentId)) {
        // Stale or still answering the last request: asked again once it can be.
        this.#due.schedule(agentId, now + this.#tickMs);
        continue;
      }
      const p: Pending = {
        id: this.#o.link.nextFrameId(),
        connId,
        nonce: new Uint8Array(randomBytes(32)),
        deadline: now + this.#o.timeoutMs,
      };
      this.#pending.set(agentId, p);
      this.#due.schedule(agentId, now + this.#o.intervalMs);
      this.#o.link.send(
        agentId,
        "attest",
        { nonce: p.nonce, purpose: "refresh" },
        { id: p.id, conn: connId },
      );
    }
  }

  /** A new session is due an interval after it registered; an agent back from stale keeps its due time. */
  #onTransition(t: Transition): void {
    if (!LIVE_STATES.has(t.to)) return;
    const fresh = t.from === null || t.from === "challenged";
    if (fresh || !this.#due.has(t.agent_id)) this.#due.schedule(t.agent_id, t.at + this.#o.intervalMs);
  }

  /** An `attestation` frame from agentId on connId, answering request `re`. Never rejects. */
  async answer(
    agentId: string,
    connId: number,
    re: number | undefined,
    body: MessageBody<"attestation">,
  ): Promise<void> {
    const p = this.#pending.get(agentId);
    if (!p || p.id !== re || p.connId !== connId) {
      this.#o.log.warn({ agent_id: agentId, re }, "attestation answer to no pending request");
      return;
    }
    this.#pending.delete(agentId);
    const facts = this.#o.supervisor.get(agentId)?.getSnapshot().context.facts;
    if (!facts) return;
    const now = this.#o.now();
    try {
      const purpose = body.purpose ?? "refresh";
      // An agent running our workload must prove which one: a plain refresh quote would hide a swapped workload.
      // The hash covers the compose file and every image digest the agent reported for it (compose/images.ts).
      const expected = this.#o.expectedWorkloadHash(agentId);
      if (expected !== null && (purpose !== "deployed" || body.workload_hash !== expected)) {
        throw new AttestationError(
          "EE-ATT-WORKLOAD-MISMATCH",
          `the quote binds ${purpose === "deployed" ? `workload hash ${body.workload_hash}` : "no workload"}, not the deployed ${expected}`,
        );
      }
      if (purpose === "deployed" && body.workload_hash === undefined)
        throw new AttestationError("EE-ATT-REPORTDATA-MISMATCH", "purpose deployed without a workload_hash");
      const { quote } = await verifyBoundQuote(this.#o.policy, {
        quote: body.quote,
        purpose,
        nonce: p.nonce,
        pubkey: Buffer.from(facts.agent_pubkey, "hex"),
        ...(body.workload_hash ? { composeHash: Buffer.from(body.workload_hash, "hex") } : {}),
        nodeSize: facts.node_size,
        at: now,
      });
      if (!this.#stillOn(agentId, connId)) return;
      const changed = quote.mrtd !== facts.mrtd || quote.rtmr.some((r, i) => r !== facts.rtmr[i]);
      if (changed) {
        throw new AttestationError(
          "EE-ATT-MEASUREMENT-CHANGED",
          "MRTD or RTMRs differ from those at registration",
          {
            registered: { mrtd: facts.mrtd, rtmr: facts.rtmr },
            seen: { mrtd: quote.mrtd, rtmr: quote.rtmr },
          },
        );
      }
      this.#o.supervisor.send(agentId, { type: "REATTESTED", at: now });
    } catch (err) {
      if (this.#stillOn(agentId, connId)) this.#fail(agentId, err);
    }
  }

  /** Collateral may be fetched during verification: a verdict for a connection that is gone is void. */
  #stillOn(agentId: string, connId: number): boolean {
    return this.#o.supervisor.connOf(agentId) === connId;
  }

  /** The agent's connection closed or it re-registered: its outstanding request is void. */
  forget(agentId: string, connId: number): void {
    // The due time stays: the close of a superseded socket can come after the new session was scheduled, and a
    // due agent that is gone is dropped when it is popped. For the same reason only a request sent on the
    // closed connection is void: one already sent on the new connection still counts.
    if (this.#pending.get(agentId)?.connId === connId) this.#pending.delete(agentId);
  }

  #fail(agentId: string, err: unknown): void {
    const reason = err instanceof AttestationError ? err.code : "EE-INTERNAL";
    if (reason === "EE-INTERNAL")
      this.#o.log.error({ agent_id: agentId, err }, "re-attestation failed unexpectedly");
    this.#o.supervisor.send(agentId, { type: "REATTESTATION_FAILED", reason, at: this.#o.now() });
  }
}
