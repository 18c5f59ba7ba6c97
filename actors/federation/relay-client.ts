// The master's side of relayed reads: one read of a dc's agent (its live machine, stats, snapshot, logs) sent to
// that dc on `ee.relay.<dc>.read`, its answers taken on the read's own reply subject. Bounded like the dc's side:
// a keep-alive each way (with the bytes received, the dc's send window), a dc silent for RELAY_SILENCE_FACTOR
// keep-alives or with nobody subscribed (the server's no-responders status) fails the read with
// EE-FED-UNAVAILABLE naming the dc, and an aborted signal cancels the dc's read. Errors the dc relays keep their
// codes. Imports spec/errors, spec/protocol types, lib/log, this folder.
import { randomBytes } from "node:crypto";
import type { Logger } from "../../lib/log.ts";
import { type EeError, errorFromCode, FederationError } from "../../spec/errors.ts";
import type { MessageBody } from "../../spec/protocol.ts";
import type { FederationBus } from "./bus.ts";
import {
  decodeRelay,
  encodeRelay,
  RELAY_SILENCE_FACTOR,
  type RelayOp,
  type RelayRequest,
  relayAnswerSchema,
} from "./relay-messages.ts";
import { relayControlSubject, relayReadSubject, relayReplySubject } from "./topology.ts";

type LogLines = MessageBody<"log_chunk">["lines"];

export interface RelayClientOptions {
  bus: Pick<FederationBus, "listen" | "send">;
  log: Logger;
  /** Keep-alive interval both ways (default 1 s: a dead dc is noticed within about 4 s). */
  keepaliveMs?: number;
  now?: () => number;
}

/** The master acknowledges log bytes at least this often, well inside the dc's window (RELAY_WINDOW_BYTES). */
export const RELAY_ACK_BYTES = 256 * 1024;

export class RelayClient {
  readonly #o: RelayClientOptions;
  readonly #now: () => number;
  readonly #keepaliveMs: number;
  /** Each open read's way to fail at once (stop). */
  readonly #open = new Set<(err: EeError) => void>();

  constructor(o: RelayClientOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
    this.#keepaliveMs = o.keepaliveMs ?? 1_000;
  }

  /** Fails every open read EE-FED-UNAVAILABLE: the master is stopping, its bus going away. */
  stop(): void {
    const err = new FederationError("EE-FED-UNAVAILABLE", "the master is shutting down");
    for (const fail of [...this.#open]) fail(err);
  }

  /** machine, stats or snapshot: the dc's answer. */
  request(dc: string, agentId: string, op: Exclude<RelayOp, "logs">): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      this.#relay(dc, { agent_id: agentId, op }, { onResult: resolve, onEnd: () => {}, onError: reject });
    });
  }

  /** Resolves when the agent says done, or when `signal` aborts (the dc's read is then cancelled). */
  logs(
    dc: string,
    agentId: string,
    body: MessageBody<"logs">,
    onChunk: (lines: LogLines) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#relay(
        dc,
        { agent_id: agentId, op: "logs", logs: body },
        { onChunk, onResult: () => resolve(), onEnd: resolve, onError: reject },
        signal,
      );
    });
  }

  #relay(
    dc: string,
    req: Pick<RelayRequest, "agent_id" | "op" | "logs">,
    h: {
      onResult: (r: Record<string, unknown>) => void;
      onChunk?: (lines: LogLines) => void;
      onEnd: () => void;
      onError: (err: EeError) => void;
    },
    signal?: AbortSignal,
  ): void {
    const { bus, log } = this.#o;
    // A client gone before the read started: nothing to ask the dc.
    if (signal?.aborted) {
      h.onEnd();
      return;
    }
    const id = randomBytes(12).toString("hex");
    const reply = relayReplySubject(dc, id);
    const silenceMs = this.#keepaliveMs * RELAY_SILENCE_FACTOR;
    let heardAt = this.#now();
    let received = 0;
    let ackedAt = 0;
    let done = false;
    const control = (action: "alive" | "cancel") => {
      ackedAt = received;
      bus.send(relayControlSubject(dc), encodeRelay({ id, action, received }));
    };
    const finish = (then: () => void) => {
      if (done) return;
      done = true;
      this.#open.delete(failNow);
      off();
      clearInterval(timer);
      signal?.removeEventListener("abort", onAbort);
      then();
    };
    const failNow = (err: EeError) => finish(() => h.onError(err));
    this.#open.add(failNow);
    const unavailable = (why: string) =>
      finish(() => h.onError(new FederationError("EE-FED-UNAVAILABLE", `dc ${dc} ${why}`)));
    const off = bus.listen(reply, (m) => {
      if (done) return;
      if (m.noResponders)
        return unavailable(
          "is not reachable: no control plane there serves relayed reads (its nats-server, its CP or its link to the hub is down)",
        );
      const a = decodeRelay(relayAnswerSchema, m.data);
      if (!a) {
        log.warn({ dc_id: dc, bytes: m.data.length }, "federation relay: malformed answer from a dc dropped");
        return;
      }
      heardAt = this.#now();
      switch (a.t) {
        case "alive":
          return;
        case "result":
          return finish(() => h.onResult(a.result));
        case "chunk":
          received += m.data.length;
          h.onChunk?.(a.lines);
          if (!done && received - ackedAt >= RELAY_ACK_BYTES) control("alive");
          return;
        case "end":
          return finish(h.onEnd);
        case "error":
          return finish(() => h.onError(errorFromCode(a.code, a.message)));
      }
    });
    const timer = setInterval(() => {
      if (this.#now() - heardAt > silenceMs) return unavailable(`did not answer within ${silenceMs} ms`);
      control("alive");
    }, this.#keepaliveMs);
    const onAbort = () =>
      finish(() => {
        control("cancel");
        h.onEnd();
      });
    signal?.addEventListener("abort", onAbort, { once: true });
    bus.send(relayReadSubject(dc), encodeRelay({ id, ...req, keepalive_ms: this.#keepaliveMs }), reply);
  }
}
