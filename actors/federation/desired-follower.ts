// A dc's side of desired state (spec/federation.md "Desired state"): a local read-only mirror (EE_DESIRED) of the
// hub's KV bucket, read in order; each value is verified (desired-state.ts) against the master's key from
// --master-key and refused unless its snapshot sequence is above the applied one. A refusal is a warn line and a
// `federation.desired_refused` event {code, message, seq} (audited locally, and reported up to the master like
// every event). An accepted snapshot makes the dc's trusted measurements match the master's (entries the master
// approved are added as `federation:master`; those it withdrew are removed; the dc's own entries are left alone),
// puts the master's drains into placement, its policy and trust roots into quote verification, and its app list
// where deploys check against it. Its sequence, digest and payload are kept in DATA_DIR/fed-desired.json (0600):
// a restarted dc refuses a rollback too, and takes the drains, policy and trust roots back before it serves.
// Imports actors/ (TrustedMeasurements, Drains, AttestationSettings), lib/log, spec/errors, node:fs, this folder.
import type { KeyObject } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import type { Logger } from "../../lib/log.ts";
import { toEeError, ValidationError } from "../../spec/errors.ts";
import type { AttestationSettings } from "../attestation-settings.ts";
import type { Drains } from "../drains.ts";
import type { AppRow } from "../store/deployment-store.ts";
import type { EventLog } from "../store/event-log.ts";
import type { TrustedMeasurements } from "../trusted-measurements.ts";
import type { BusMessage, FederationBus } from "./bus.ts";
import {
  type AppliedDesired,
  type DesiredPayload,
  desiredPayloadSchema,
  measurementKey,
  verifyDesired,
} from "./desired-state.ts";
import { DESIRED_STREAM, desiredDeliver, HUB_DESIRED_STREAM, HUB_DOMAIN, jsApi } from "./topology.ts";

export const DESIRED_REFUSED = "federation.desired_refused";
export const DESIRED_APPLIED = "federation.desired_applied";
/** Who the dc's trusted-measurement entries from the master are added by (and the only ones it removes). */
export const FROM_MASTER = "federation:master";

export interface DesiredFollowerOptions {
  dcId: string;
  bus: FederationBus;
  masterKey: KeyObject;
  /** DATA_DIR/fed-desired.json: the applied snapshot sequence and digest. */
  stateFile: string;
  trusted: TrustedMeasurements;
  drains: Drains;
  attestation: AttestationSettings;
  events: EventLog;
  log: Logger;
  now?: () => number;
}

export class DesiredFollower {
  readonly #o: Required<DesiredFollowerOptions>;
  #applied: StoredDesired | null;
  #apps: DesiredPayload["apps"] = [];
  #stop: () => void = () => {};

  constructor(o: DesiredFollowerOptions) {
    this.#o = { now: Date.now, ...o };
    this.#applied = readApplied(o.stateFile);
  }

  /** The applied snapshot sequence (0 before the first). */
  get seq(): number {
    return this.#applied?.seq ?? 0;
  }

  /** The master's app registry as of the applied snapshot (name@version and compose hash). */
  apps(): readonly Pick<AppRow, "name" | "version" | "compose_hash">[] {
    return this.#apps;
  }

  async start(): Promise<void> {
    const { bus, dcId } = this.#o;
    // Before the mirror is read (and before the CP serves): the applied snapshot's drains, policy and roots.
    if (this.#applied?.payload)
      this.#applyInMemory(desiredPayloadSchema.parse(JSON.parse(this.#applied.payload)));
    await bus.putStream({
      name: DESIRED_STREAM,
      description: `EasyEnclave dc ${dcId}: desired state from the master (mirror of the hub's ${HUB_DESIRED_STREAM})`,
      mirror: { stream: HUB_DESIRED_STREAM, api: jsApi(HUB_DOMAIN), deliver: desiredDeliver(dcId) },
      maxMsgsPerSubject: 1,
    });
    this.#stop = bus.follow(DESIRED_STREAM, 1, (m) => this.#receive(m));
  }

  #receive(m: BusMessage): void {
    const { log, events } = this.#o;
    const verdict = verifyDesired(m.data, this.#o.masterKey, this.#applied);
    if (!verdict.ok) {
      this.#refuse(m, verdict);
      return;
    }
    if (verdict.payload === null) return; // the snapshot applied already (replayed after a restart)
    const { payload } = verdict;
    try {
      // First, as the only step that can refuse (a trust root that is no CA): nothing is applied then.
      this.#applyInMemory(payload);
    } catch (err) {
      this.#refuse(m, {
        code: "EE-FED-DESIRED-SCHEMA",
        message: `a trust root of the snapshot is unusable: ${(err as Error).message}`,
        seq: payload.seq,
      });
      return;
    }
    const changed = this.#applyMeasurements(payload);
    this.#applied = { ...verdict.applied, payload: JSON.stringify(payload) };
    writeApplied(this.#o.stateFile, this.#applied);
    log.info(
      { seq: payload.seq, ...changed, drains: payload.drains.length },
      "federation: desired state applied",
    );
    events.append({
      at: this.#o.now(),
      kind: DESIRED_APPLIED,
      data: {
        seq: payload.seq,
        apps: payload.apps.length,
        ...changed,
        drains: payload.drains.length,
        policy: payload.policy !== null,
        trust_roots: payload.trust_roots?.length ?? null,
      },
    });
  }

  #refuse(m: BusMessage, r: { code: string; message: string; seq: number | null }): void {
    this.#o.log.warn(
      { code: r.code, seq: r.seq, stream_seq: m.seq, reason: r.message },
      "federation: desired state refused",
    );
    this.#o.events.append({
      at: this.#o.now(),
      kind: DESIRED_REFUSED,
      data: { code: r.code, message: r.message, seq: r.seq, stream_seq: m.seq },
    });
  }

  /** What the dc holds in memory only: the app list, drains, policy and trust roots. Throws before any change. */
  #applyInMemory(payload: DesiredPayload): void {
    this.#o.attestation.setFromMaster({ policy: payload.policy, trustRoots: payload.trust_roots });
    this.#o.drains.setFromMaster(payload.drains);
    this.#apps = payload.apps;
  }

  #applyMeasurements(payload: DesiredPayload): { trusted_added: number; trusted_removed: number } {
    const { trusted, log } = this.#o;
    const want = new Map(payload.measurements.map((m) => [measurementKey(m), m]));
    let removed = 0;
    for (const e of trusted.list())
      if (e.added_by === FROM_MASTER && !want.has(measurementKey(e))) {
        trusted.remove(e.id, FROM_MASTER);
        removed++;
      }
    const have = new Set(trusted.list().map(measurementKey));
    let added = 0;
    for (const [key, m] of want) {
      if (have.has(key)) continue;
      try {
        trusted.add({ node_size: m.node_size, mrtd: m.mrtd, rtmr: m.rtmr, note: m.note }, FROM_MASTER);
        added++;
      } catch (err) {
        // A node size this dc does not offer: nothing of it can register here anyway.
        log.warn(
          { code: toEeError(err).code, node_size: m.node_size },
          "federation: a trusted measurement from the master does not apply here",
        );
      }
    }
    return { trusted_added: added, trusted_removed: removed };
  }

  stop(): void {
    this.#stop();
  }
}

/** The applied snapshot's payload text is kept too (absent in files an older version wrote). */
type StoredDesired = AppliedDesired & { payload?: string };

function readApplied(file: string): StoredDesired | null {
  if (!existsSync(file)) return null;
  try {
    const v = JSON.parse(readFileSync(file, "utf8")) as StoredDesired;
    if (
      Number.isInteger(v.seq) &&
      v.seq > 0 &&
      typeof v.digest === "string" &&
      (v.payload === undefined || typeof v.payload === "string")
    )
      return v;
  } catch {
    // reported below
  }
  throw new ValidationError(
    "EE-CONFIG-INVALID",
    `${file} is not a desired-state record; remove it to resync`,
  );
}

function writeApplied(file: string, applied: StoredDesired): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, JSON.stringify(applied), { mode: 0o600 });
  renameSync(tmp, file);
}
