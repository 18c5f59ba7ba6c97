// Request/answer over the agent channel for the CP's relayed reads: stats and snapshot (one `reply`) and logs
// (a stream of `log_chunk` frames, cancellable). Correlates answers by `re`, bounds every wait with a timeout,
// and fails what is outstanding when the agent's connection goes away. Knows frames by agent id, not bytes or sockets (AgentLink).
import type { LogLines } from "../contract/agents.ts";
import type { Logger } from "../lib/log.ts";
import { type EeError, errorFromCode, WorkloadError } from "../spec/errors.ts";
import type { MessageBody } from "../spec/protocol.ts";
import type { AgentLink } from "./agent-link.ts";

export type { LogLines } from "../contract/agents.ts";

interface Pending {
  agentId: string;
  connId: number;
  timer: NodeJS.Timeout | null;
  onReply?: (result: Record<string, unknown>) => void;
  onChunk?: (lines: LogLines, done: boolean) => void;
  onError: (err: EeError) => void;
}

export interface AgentRequestsOptions {
  link: AgentLink;
  /** The agent's current connection, or null when it is not connected. */
  connOf: (agentId: string) => number | null;
  log: Logger;
  timeoutMs?: number;
}

export class AgentRequests {
  readonly #o: AgentRequestsOptions;
  readonly #pending = new Map<number, Pending>();

  constructor(o: AgentRequestsOptions) {
    this.#o = o;
  }

  /** A `stats` or `snapshot` request; resolves with the agent's `reply` result. */
  request(agentId: string, type: "stats" | "snapshot"): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const id = this.#open(agentId, { onReply: resolve, onError: reject }, true);
      if (id !== null) this.#send(id, type, {});
    });
  }

  /**
   * A `logs` request: onChunk gets each batch; resolves when the agent says done, or when `signal` aborts
   * (a follow ends that way: the agent is sent `cancel`).
   */
  logs(
    agentId: string,
    body: MessageBody<"logs">,
    onChunk: (lines: LogLines) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      const id = this.#open(
        agentId,
        {
          onChunk: (lines, done) => {
            if (lines.length) onChunk(lines);
            if (done) resolve();
          },
          onError: reject,
        },
        !body.follow,
      );
      if (id === null) return;
      signal?.addEventListener(
        "abort",
        () => {
          const p = this.#pending.get(id);
          if (!p) return;
          this.#close(id);
          this.#o.link.send(p.agentId, "cancel", {}, { re: id, conn: p.connId });
          resolve();
        },
        { once: true },
      );
      this.#send(id, "logs", body);
    });
  }

  /** Routes an answer frame; returns false when `re` matches no request of this agent. */
  reply(agentId: string, re: number | undefined, result: Record<string, unknown>): boolean {
    const p = this.#take(agentId, re);
    if (!p?.onReply) return false;
    this.#close(re!);
    p.onReply(result);
    return true;
  }

  chunk(agentId: string, re: number | undefined, body: MessageBody<"log_chunk">): boolean {
    const p = this.#take(agentId, re);
    if (!p?.onChunk) return false;
    if (body.done) this.#close(re!);
    p.onChunk(body.lines, body.done);
    return true;
  }

  error(agentId: string, re: number | undefined, body: MessageBody<"error">): boolean {
    const p = this.#take(agentId, re);
    if (!p) return false;
    this.#close(re!);
    p.onError(errorFromCode(body.code, body.message));
    return true;
  }

  /**
   * The agent's connection closed: everything asked on it fails. Requests already sent on a newer connection
   * stay (a superseded socket's close can come long after the agent reconnected).
   */
  forget(agentId: string, connId: number): void {
    for (const [id, p] of this.#pending) {
      if (p.agentId !== agentId || p.connId !== connId) continue;
      this.#close(id);
      p.onError(new WorkloadError("EE-WORKLOAD-AGENT-LOST", "the agent disconnected before answering"));
    }
  }

  get size(): number {
    return this.#pending.size;
  }

  #open(
    agentId: string,
    handlers: Omit<Pending, "agentId" | "connId" | "timer">,
    timed: boolean,
  ): number | null {
    const connId = this.#o.connOf(agentId);
    if (connId === null) {
      handlers.onError(new WorkloadError("EE-WORKLOAD-AGENT-LOST", `agent ${agentId} is not connected`));
      return null;
    }
    const id = this.#o.link.nextFrameId();
    const timeoutMs = this.#o.timeoutMs ?? 10_000;
    const timer = timed
      ? setTimeout(() => {
          if (!this.#pending.has(id)) return;
          this.#close(id);
          handlers.onError(
            new WorkloadError("EE-WORKLOAD-AGENT-LOST", `the agent did not answer within ${timeoutMs} ms`),
          );
        }, timeoutMs)
      : null;
    this.#pending.set(id, { agentId, connId, timer, ...handlers });
    return id;
  }

  /** Sends request `id` on the connection it was opened for. */
  #send<T extends "stats" | "snapshot" | "logs">(id: number, type: T, body: MessageBody<T>): void {
    const p = this.#pending.get(id);
    if (p) this.#o.link.send(p.agentId, type, body, { id, conn: p.connId });
  }

  #take(agentId: string, re: number | undefined): Pending | undefined {
    if (re === undefined) return undefined;
    const p = this.#pending.get(re);
    return p && p.agentId === agentId ? p : undefined;
  }

  #close(id: number): void {
    const p = this.#pending.get(id);
    if (p?.timer) clearTimeout(p.timer);
    this.#pending.delete(id);
  }
}
