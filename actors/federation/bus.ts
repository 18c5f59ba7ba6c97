// The NATS side of federation behind one small interface (FederationBus): streams, publishes with a message id,
// ordered reads, a durable work queue, and core request/reply. The sync sides (dc-link.ts, master-link.ts) see
// only this, in their own terms; the @nats-io clients are imported here and nowhere else.
// Imports @nats-io/transport-node, @nats-io/jetstream, @nats-io/kv, spec/errors, lib/log.
import { readFileSync } from "node:fs";
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import {
  type Authenticator,
  connect,
  credsAuthenticator,
  type NatsConnection,
  nanos,
  usernamePasswordAuthenticator,
} from "@nats-io/transport-node";
import type { Logger } from "../../lib/log.ts";
import { FederationError, ValidationError } from "../../spec/errors.ts";

export interface BusMessage {
  /** The stream sequence (a mirror keeps its origin's). */
  seq: number;
  subject: string;
  data: Uint8Array;
  msgId: string | null;
}

export interface StreamState {
  lastSeq: number;
  messages: number;
  /** Set on a mirror: how far behind its origin, and how long since it last heard from it. */
  mirror: { lag: number; activeMs: number | null; error: string | null } | null;
}

/** A file-backed stream, in our terms (the bus turns it into a JetStream config). */
export interface StreamSpec {
  name: string;
  description: string;
  /** Subjects it captures; none for a mirror. */
  subjects?: string[];
  /** Mirror of a stream in another JetStream domain, delivered over the leaf link under `deliver`. */
  mirror?: { stream: string; api: string; deliver: string };
  maxBytes?: number;
  maxAgeMs?: number;
  /** Refuse new messages when full (a loud failure) instead of dropping the oldest. */
  discardNew?: boolean;
  duplicateWindowMs?: number;
  /** Keep only the newest N messages per subject (a mirror of a KV bucket needs no history). */
  maxMsgsPerSubject?: number;
}

function streamConfig(spec: StreamSpec): Partial<StreamConfig> & { name: string } {
  return {
    name: spec.name,
    description: spec.description,
    storage: StorageType.File,
    ...(spec.subjects ? { subjects: spec.subjects } : {}),
    ...(spec.mirror
      ? {
          mirror: {
            name: spec.mirror.stream,
            external: { api: spec.mirror.api, deliver: spec.mirror.deliver },
          },
        }
      : {}),
    ...(spec.maxBytes ? { max_bytes: spec.maxBytes } : {}),
    ...(spec.maxAgeMs ? { max_age: nanos(spec.maxAgeMs) } : {}),
    ...(spec.discardNew ? { discard: DiscardPolicy.New } : {}),
    ...(spec.duplicateWindowMs ? { duplicate_window: nanos(spec.duplicateWindowMs) } : {}),
    ...(spec.maxMsgsPerSubject ? { max_msgs_per_subject: spec.maxMsgsPerSubject } : {}),
  };
}

export interface FederationBus {
  /** Adds the stream, or applies this config to it: re-applying an unchanged config is the mirror "kick". */
  putStream(spec: StreamSpec): Promise<void>;
  streamState(name: string): Promise<StreamState | null>;
  /** The descriptions of every stream on the server (how a master finds the dcs it mirrors). */
  streamDescriptions(): Promise<string[]>;
  /** Publishes into a stream; a repeated msgId within the stream's duplicate window is stored once. */
  publish(subject: string, data: Uint8Array, msgId?: string): Promise<{ seq: number; duplicate: boolean }>;
  /** The newest message on `subject` in `stream`, or null. */
  lastMessage(stream: string, subject: string): Promise<BusMessage | null>;
  /** Reads `stream` in order from `fromSeq` (an ordered consumer, recreated on gaps and reconnects) until stopped. */
  follow(stream: string, fromSeq: number, onMessage: (m: BusMessage) => Promise<void> | void): () => void;
  /** A durable consumer: a message is acked once `onMessage` resolves, redelivered later when it throws. */
  work(stream: string, durable: string, onMessage: (m: BusMessage) => Promise<void> | void): () => void;
  /** Writes `key` of KV `bucket` (created on first use with `history` values per key); the new revision. */
  kvPut(bucket: string, key: string, data: Uint8Array, history: number): Promise<number>;
  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  serve(subject: string, handler: (subject: string, data: Uint8Array) => Uint8Array): () => void;
  /** Core NATS: every message on `subject` (wildcards allowed) until the returned function is called. */
  listen(subject: string, onMessage: (m: CoreMessage) => void): () => void;
  /** Core NATS publish, with `reply` for a request whose answers come back there. */
  send(subject: string, data: Uint8Array, reply?: string): void;
  close(): Promise<void>;
}

export interface CoreMessage {
  subject: string;
  data: Uint8Array;
  reply: string | null;
  /** The server's status for a request nobody subscribes to (its 503): the dc is not there. */
  noResponders: boolean;
}

export interface BusOptions {
  url: string;
  /** A NATS .creds file (JWT and nkey seed), or a file whose first line is `user:password`. */
  credsFile?: string;
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  name: string;
  log: Logger;
}

/** How long a start waits for the local nats-server before giving up (EE-FED-UNAVAILABLE). */
const CONNECT_TIMEOUT_MS = 10_000;
/**
 * Pull requests last this long; the client calls a consumer lost after two missed idle heartbeats (half of it),
 * so a restarted server's forgotten consumer is recreated within seconds instead of the default 30 s or more.
 */
const CONSUME_EXPIRES_MS = 5_000;
/** A consumer that cannot be set up (stream not there yet, server away) is retried this often. */
const RETRY_MS = 1_000;

export async function connectBus(o: BusOptions): Promise<FederationBus> {
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: o.url,
      name: o.name,
      timeout: CONNECT_TIMEOUT_MS,
      // The CP outlives its server's restarts: reconnect forever, state is in the streams.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      ...(o.credsFile ? { authenticator: authenticatorFrom(o.credsFile) } : {}),
      ...(o.tls ? { tls: o.tls } : {}),
    });
  } catch (err) {
    throw new FederationError(
      "EE-FED-UNAVAILABLE",
      `cannot reach the nats-server at ${redactUrl(o.url)}: ${(err as Error).message}`,
    );
  }
  const jsm = await jetstreamManager(nc, { checkAPI: false });
  const js = jetstream(nc);
  return new NatsBus(nc, jsm, js, o.log);
}

function authenticatorFrom(file: string): Authenticator {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ValidationError(
      "EE-CONFIG-INVALID",
      `--nats-creds: cannot read ${file}: ${(err as Error).message}`,
    );
  }
  if (text.includes("BEGIN NATS USER JWT")) return credsAuthenticator(new TextEncoder().encode(text));
  const line = text.split("\n")[0]!.trim();
  const colon = line.indexOf(":");
  if (colon <= 0)
    throw new ValidationError(
      "EE-CONFIG-INVALID",
      "--nats-creds: expected a NATS .creds file or a first line user:password",
    );
  return usernamePasswordAuthenticator(line.slice(0, colon), line.slice(colon + 1));
}

/** A URL for logs and errors: userinfo (a password) never leaves. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, "//***@");
}

class NatsBus implements FederationBus {
  readonly #nc: NatsConnection;
  readonly #jsm: JetStreamManager;
  readonly #js: JetStreamClient;
  readonly #log: Logger;

  constructor(nc: NatsConnection, jsm: JetStreamManager, js: JetStreamClient, log: Logger) {
    this.#nc = nc;
    this.#jsm = jsm;
    this.#js = js;
    this.#log = log;
  }

  async putStream(spec: StreamSpec): Promise<void> {
    const config = streamConfig(spec);
    const existing = await this.#jsm.streams.info(spec.name).catch(() => null);
    if (!existing) {
      await this.#jsm.streams.add(config);
      return;
    }
    // The server's own config with ours over it, applied again even when nothing changed: on nats-server 2.10
    // this restarts a mirror stuck after a leaf reconnect (the "kick").
    const { name, ...update } = config;
    await this.#jsm.streams.update(name, { ...existing.config, ...update });
  }

  async streamState(name: string): Promise<StreamState | null> {
    const info = await this.#jsm.streams.info(name).catch(() => null);
    if (!info) return null;
    const m = info.mirror;
    return {
      lastSeq: info.state.last_seq,
      messages: info.state.messages,
      mirror: m
        ? {
            lag: m.lag,
            activeMs: m.active < 0 ? null : Math.round(m.active / 1e6),
            error: m.error?.description ?? null,
          }
        : null,
    };
  }

  async streamDescriptions(): Promise<string[]> {
    const out: string[] = [];
    for await (const info of this.#jsm.streams.list())
      if (info.config.description) out.push(info.config.description);
    return out;
  }

  async publish(subject: string, data: Uint8Array, msgId?: string) {
    const ack = await this.#js.publish(subject, data, msgId ? { msgID: msgId } : {});
    return { seq: ack.seq, duplicate: ack.duplicate };
  }

  async lastMessage(stream: string, subject: string): Promise<BusMessage | null> {
    const m = await this.#jsm.streams.getMessage(stream, { last_by_subj: subject }).catch(() => null);
    if (!m) return null;
    return { seq: m.seq, subject: m.subject, data: m.data, msgId: m.header?.get("Nats-Msg-Id") || null };
  }

  follow(stream: string, fromSeq: number, onMessage: (m: BusMessage) => Promise<void> | void): () => void {
    return this.#loop(`follow ${stream}`, async (running) => {
      const consumer = await this.#js.consumers.get(stream, {
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: Math.max(1, fromSeq),
      });
      const msgs = await consumer.consume({ max_messages: 256, expires: CONSUME_EXPIRES_MS });
      running.stop = () => msgs.stop();
      for await (const m of msgs) {
        fromSeq = m.seq + 1;
        await onMessage({
          seq: m.seq,
          subject: m.subject,
          data: m.data,
          msgId: m.headers?.get("Nats-Msg-Id") || null,
        });
      }
    });
  }

  work(stream: string, durable: string, onMessage: (m: BusMessage) => Promise<void> | void): () => void {
    return this.#loop(`work ${stream}`, async (running) => {
      await this.#jsm.consumers.add(stream, {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        ack_wait: nanos(60_000),
      });
      const consumer = await this.#js.consumers.get(stream, durable);
      const msgs = await consumer.consume({ max_messages: 16, expires: CONSUME_EXPIRES_MS });
      running.stop = () => msgs.stop();
      for await (const m of msgs) {
        try {
          await onMessage({
            seq: m.seq,
            subject: m.subject,
            data: m.data,
            msgId: m.headers?.get("Nats-Msg-Id") || null,
          });
          m.ack();
        } catch (err) {
          this.#log.warn({ err, stream, seq: m.seq }, "federation command failed; redelivered later");
          m.nak(5_000);
        }
      }
    });
  }

  /** Runs `body` until stopped, starting it again a second after it ends or fails (stream missing, server away). */
  #loop(what: string, body: (running: { stop: () => void }) => Promise<void>): () => void {
    let stopped = false;
    const running = { stop: () => {} };
    let timer: NodeJS.Timeout | null = null;
    let failures = 0;
    const run = () => {
      body(running).then(
        () => again(),
        (err: unknown) => {
          if (failures++ % 30 === 0)
            this.#log.warn({ err: (err as Error).message, what }, "federation consumer retrying");
          again();
        },
      );
    };
    const again = () => {
      if (stopped) return;
      timer = setTimeout(run, RETRY_MS);
    };
    run();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      running.stop();
    };
  }

  async kvPut(bucket: string, key: string, data: Uint8Array, history: number): Promise<number> {
    const kv = await new Kvm(this.#js).create(bucket, { history });
    return kv.put(key, data);
  }

  async request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    return (await this.#nc.request(subject, data, { timeout: timeoutMs })).data;
  }

  serve(subject: string, handler: (subject: string, data: Uint8Array) => Uint8Array): () => void {
    const sub = this.#nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) return;
        try {
          msg.respond(handler(msg.subject, msg.data));
        } catch (e) {
          this.#log.warn({ err: e, subject: msg.subject }, "federation request refused");
        }
      },
    });
    return () => sub.unsubscribe();
  }

  listen(subject: string, onMessage: (m: CoreMessage) => void): () => void {
    const sub = this.#nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) return;
        onMessage({
          subject: msg.subject,
          data: msg.data,
          reply: msg.reply || null,
          noResponders: msg.data.length === 0 && msg.headers?.code === 503,
        });
      },
    });
    return () => sub.unsubscribe();
  }

  send(subject: string, data: Uint8Array, reply?: string): void {
    this.#nc.publish(subject, data, reply ? { reply } : {});
  }

  async close(): Promise<void> {
    await this.#nc.drain().catch(() => this.#nc.close());
  }
}
