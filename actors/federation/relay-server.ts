// The dc's side of relayed reads: serves the master's requests on `ee.relay.<dc>.read` with the dc's own agent
// reads (over the agent's WebSocket, as for a local caller) and answers on the request's reply subject. Every
// open read is bounded: at most `maxOpen` at once, a keep-alive each way, stopped when the master cancels or goes
// silent, and a log stream stopped as a slow consumer when the master falls `windowBytes` behind (it acks what it
// received). Imports actors/ and transport/ types, spec/errors, lib/log, this folder.

import type { AgentReadsPort } from "../../contract/agents.ts";
import type { Logger } from "../../lib/log.ts";
import { EeError, FederationError, NotFoundError, ProtocolError, toEeError } from "../../spec/errors.ts";
import type { FederationBus } from "./bus.ts";
import {
  decodeRelay,
  encodeRelay,
  RELAY_SILENCE_FACTOR,
  type RelayAnswer,
  type RelayRequest,
  relayControlSchema,
  relayRequestSchema,
} from "./relay-messages.ts";
import { relayControlSubject, relayReadSubject, relayReplySubject } from "./topology.ts";

export interface RelayServerOptions {
  dcId: string;
  bus: Pick<FederationBus, "listen" | "send">;
  reads: AgentReadsPort;
  /** The agent's live machine as plain JSON ({value, context}), or undefined when this CP does not hold it. */
  machine: (agentId: string) => Record<string, unknown> | undefined;
  log: Logger;
  maxOpen?: number;
  windowBytes?: number;
  now?: () => number;
}

/** Reads open at once on one dc: operators' log follows and stats polls, not a bulk channel. */
export const RELAY_MAX_OPEN = 64;
/**
 * What a log stream may send beyond what the master acknowledged: the local path lets a follower's HTTP buffer
 * hold 4 MiB; the master acks every 256 KiB, so a reading master never comes near this.
 */
export const RELAY_WINDOW_BYTES = 8 * 1024 * 1024;

interface Open {
  reply: string;
  heardAt: number;
  sent: number;
  acked: number;
  timer: NodeJS.Timeout;
  abort: AbortController;
}

export class RelayServer {
  readonly #o: RelayServerOptions;
  readonly #open = new Map<string, Open>();
  readonly #now: () => number;
  #offs: (() => void)[] = [];

  constructor(o: RelayServerOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
  }

  start(): void {
    const { bus, dcId } = this.#o;
    this.#offs = [
      bus.listen(relayReadSubject(dcId), (m) => this.#read(m.data, m.reply)),
      bus.listen(relayControlSubject(dcId), (m) => this.#control(m.data)),
    ];
  }

  /** Ends every open read with EE-FED-UNAVAILABLE, so the master answers its clients at once, not after silence. */
  stop(): void {
    for (const off of this.#offs) off();
    this.#offs = [];
    const closing = errorAnswer(this.#unavailable("is shutting down"));
    for (const id of [...this.#open.keys()]) this.#finish(id, closing);
  }

  get size(): number {
    return this.#open.size;
  }

  #read(data: Uint8Array, reply: string | null): void {
    const req = decodeRelay(relayRequestSchema, data);
    if (!req) {
      this.#o.log.warn({ bytes: data.length }, "federation relay: malformed read request dropped");
      return;
    }
    // Answers go only to the read's own reply subject in this dc's reply space (all the hub lets it publish).
    if (reply !== relayReplySubject(this.#o.dcId, req.id) || this.#open.has(req.id)) {
      this.#o.log.warn(
        { id: req.id },
        "federation relay: read request with a foreign or reused reply dropped",
      );
      return;
    }
    if (this.#open.size >= (this.#o.maxOpen ?? RELAY_MAX_OPEN)) {
      this.#answer(reply, errorAnswer(this.#unavailable(`has ${this.#open.size} relayed reads open`)));
      return;
    }
    const abort = new AbortController();
    const open: Open = {
      reply,
      heardAt: this.#now(),
      sent: 0,
      acked: 0,
      abort,
      timer: setInterval(() => this.#tick(req.id, req.keepalive_ms), req.keepalive_ms),
    };
    this.#open.set(req.id, open);
    this.#answer(reply, { t: "alive" });
    this.#perform(req, open).then(
      (last) => this.#finish(req.id, last),
      (err: unknown) => this.#finish(req.id, errorAnswer(toEeError(err))),
    );
  }

  /** The read itself; resolves with its last answer (null: nobody listens any more). */
  async #perform(req: RelayRequest, open: Open): Promise<RelayAnswer | null> {
    const { reads } = this.#o;
    if (req.op === "machine") {
      const machine = this.#o.machine(req.agent_id);
      if (!machine)
        throw new NotFoundError("EE-NOT-FOUND", `agent ${req.agent_id} is not known to this control plane`);
      return { t: "result", result: machine };
    }
    if (req.op !== "logs") return { t: "result", result: await reads.request(req.agent_id, req.op) };
    const window = this.#o.windowBytes ?? RELAY_WINDOW_BYTES;
    await reads.logs(
      req.agent_id,
      req.logs ?? {},
      (lines) => {
        if (open.abort.signal.aborted) return;
        open.sent += this.#answer(open.reply, { t: "chunk", lines });
        if (open.sent - open.acked > window)
          open.abort.abort(
            new ProtocolError(
              "EE-PROTO-SLOW-CONSUMER",
              `the log stream's reader fell more than ${window} bytes behind`,
            ),
          );
      },
      open.abort.signal,
    );
    const reason: unknown = open.abort.signal.reason;
    if (!open.abort.signal.aborted) return { t: "end" };
    return reason instanceof EeError ? errorAnswer(reason) : null;
  }

  #control(data: Uint8Array): void {
    const ctl = decodeRelay(relayControlSchema, data);
    if (!ctl) {
      this.#o.log.warn({ bytes: data.length }, "federation relay: malformed control message dropped");
      return;
    }
    const open = this.#open.get(ctl.id);
    if (!open) return;
    open.heardAt = this.#now();
    open.acked = Math.max(open.acked, ctl.received);
    if (ctl.action === "cancel") open.abort.abort();
  }

  #tick(id: string, keepaliveMs: number): void {
    const open = this.#open.get(id);
    if (!open) return;
    if (this.#now() - open.heardAt > keepaliveMs * RELAY_SILENCE_FACTOR) {
      this.#o.log.info({ id }, "federation relay: the master went silent; read stopped");
      open.abort.abort();
      return;
    }
    this.#answer(open.reply, { t: "alive" });
  }

  #finish(id: string, last: RelayAnswer | null): void {
    const open = this.#open.get(id);
    if (!open) return;
    this.#open.delete(id);
    clearInterval(open.timer);
    if (!open.abort.signal.aborted) open.abort.abort();
    if (last) this.#answer(open.reply, last);
  }

  /** Sends one answer; its size in bytes (what the master counts as received). */
  #answer(reply: string, answer: RelayAnswer): number {
    const data = encodeRelay(answer);
    this.#o.bus.send(reply, data);
    return data.length;
  }

  #unavailable(why: string): FederationError {
    return new FederationError("EE-FED-UNAVAILABLE", `dc ${this.#o.dcId} ${why}`);
  }
}

function errorAnswer(err: EeError): RelayAnswer {
  return { t: "error", code: err.code, message: err.message.slice(0, 4096) };
}
