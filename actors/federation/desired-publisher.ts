// The master's side of desired state (spec/federation.md "Desired state"): whenever the app registry, the
// trusted measurements or the drains change (their events in the log), it signs a new snapshot with the CP identity key and puts
// it into the hub's KV bucket under the next snapshot sequence. The sequence continues from the bucket's current
// value, so a restarted master never reuses one; an unchanged content is not republished. A write that fails (hub
// away) is retried every few seconds until it lands.
// Imports actors/ types, lib/log, node:crypto types, and this folder.
import type { KeyObject } from "node:crypto";
import type { MeasurementPolicy } from "../../attestation/policy.ts";
import type { Logger } from "../../lib/log.ts";
import type { AppRow } from "../store/deployment-store.ts";
import type { EventLog, EventRecord } from "../store/event-log.ts";
import type { TrustedEntry } from "../trusted-measurements.ts";
import type { FederationBus } from "./bus.ts";
import { type DesiredPayload, desiredPayloadSchema, signDesired } from "./desired-state.ts";
import { decodeJson } from "./messages.ts";
import { DESIRED_BUCKET, DESIRED_KEY, desiredSubject, HUB_DESIRED_STREAM } from "./topology.ts";

export interface DesiredPublisherOptions {
  bus: FederationBus;
  /** The CP identity key (DATA_DIR/cp-identity.key): what dcs verify with --master-key. */
  key: KeyObject;
  events: EventLog;
  apps: () => readonly AppRow[];
  measurements: () => readonly TrustedEntry[];
  /** Agent ids drained on the master (actors/drains.ts). */
  drains: () => readonly string[];
  /** The master's --policy (null: none); fixed for the CP's life. */
  policy: MeasurementPolicy | null;
  /** The master's non-Intel trust anchors as PEM; fixed for the CP's life. */
  trustRoots: readonly string[];
  log: Logger;
  retryMs?: number;
  now?: () => number;
}

/** Event kinds that change what the snapshot holds. */
const CHANGES = /^(app\.registered|measurement\.|agent\.(un)?drained$)/;

export class DesiredPublisher {
  readonly #o: Required<DesiredPublisherOptions>;
  #seq = 0;
  /** The content (apps and measurements) of the newest snapshot that landed, to skip an unchanged republish. */
  #published: string | null = null;
  #dirty = true;
  #running: Promise<void> | null = null;
  #timer: NodeJS.Timeout | null = null;
  #stopFollow: () => void = () => {};

  constructor(o: DesiredPublisherOptions) {
    this.#o = { retryMs: 5_000, now: Date.now, ...o };
  }

  /** Newest snapshot sequence that landed in the bucket (0 before the first). */
  get seq(): number {
    return this.#seq;
  }

  async start(): Promise<void> {
    const last = await this.#o.bus.lastMessage(HUB_DESIRED_STREAM, desiredSubject);
    if (last) {
      try {
        const payload = desiredPayloadSchema.parse(
          JSON.parse((decodeJson(last.data) as { payload: string }).payload),
        );
        this.#seq = payload.seq;
        this.#published = content(payload);
      } catch {
        // Not ours (or tampered): the next snapshot goes above the bucket's revision, which only grows.
        this.#seq = last.seq;
      }
    }
    this.#stopFollow = this.#o.events.follow((records: readonly EventRecord[]) => {
      if (records.some((r) => CHANGES.test(r.kind))) this.#mark();
    });
    this.#timer = setInterval(() => {
      if (this.#dirty) this.#mark();
    }, this.#o.retryMs);
    this.#timer.unref();
    this.#mark();
    await this.#running;
  }

  #mark(): void {
    this.#dirty = true;
    if (!this.#running) this.#running = this.#publish().catch(() => {});
  }

  /** Publishes the current content if it differs from the newest landed snapshot; one write at a time. */
  async #publish(): Promise<void> {
    try {
      while (this.#dirty) {
        this.#dirty = false;
        const payload: DesiredPayload = {
          seq: this.#seq + 1,
          issued_at: this.#o.now(),
          apps: this.#o
            .apps()
            .map((a) => ({ name: a.name, version: a.version, compose_hash: a.compose_hash })),
          measurements: this.#o.measurements().map((m) => ({
            node_size: m.node_size,
            mrtd: m.mrtd,
            rtmr: m.rtmr,
            note: m.note,
          })),
          drains: [...this.#o.drains()],
          policy: this.#o.policy,
          trust_roots: [...this.#o.trustRoots],
        };
        if (content(payload) === this.#published) continue;
        try {
          await this.#o.bus.kvPut(DESIRED_BUCKET, DESIRED_KEY, signDesired(payload, this.#o.key), 1);
        } catch (err) {
          this.#dirty = true;
          this.#o.log.warn(
            { err: (err as Error).message, seq: payload.seq },
            "federation: desired state not written to the hub; retrying",
          );
          throw err;
        }
        this.#seq = payload.seq;
        this.#published = content(payload);
        this.#o.log.info(
          {
            seq: payload.seq,
            apps: payload.apps.length,
            measurements: payload.measurements.length,
            drains: payload.drains.length,
          },
          "federation: desired state published",
        );
      }
    } finally {
      this.#running = null;
    }
  }

  stop(): void {
    this.#stopFollow();
    if (this.#timer) clearInterval(this.#timer);
  }
}

const content = (p: DesiredPayload) =>
  JSON.stringify([p.apps, p.measurements, p.drains, p.policy, p.trust_roots ?? null]);
