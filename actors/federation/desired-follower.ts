// A dc's side of desired state (spec/federation.md "Desired state"): a local read-only mirror (EE_DESIRED) of the
// hub's KV bucket, read in order; each value is verified (desired-state.ts) against the master's key from
// --master-key and refused unless its snapshot sequence is above the applied one. A refusal is a warn line and a
// `federation.desired_refused` event {code, message, seq} (audited locally, and reported up to the master like
// every event). An accepted snapshot makes the dc's trusted measurements match the master's (entries the master
// approved are added as `federation:master`; those it withdrew are removed; the dc's own entries are left alone),
// and its sequence is kept in DATA_DIR/fed-desired.json (0600) so a restarted dc refuses a rollback too.
// Imports actors/ (TrustedMeasurements), lib/log, spec/errors, node:fs, and this folder.
import type { KeyObject } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import type { Logger } from "../../lib/log.ts";
import { toEeError, ValidationError } from "../../spec/errors.ts";
import type { AppRow } from "../store/deployment-store.ts";
import type { EventLog } from "../store/event-log.ts";
import type { TrustedMeasurements } from "../trusted-measurements.ts";
import type { BusMessage, FederationBus } from "./bus.ts";
import { type AppliedDesired, type DesiredPayload, measurementKey, verifyDesired } from "./desired-state.ts";
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
  events: EventLog;
  log: Logger;
  now?: () => number;
}

export class DesiredFollower {
  readonly #o: Required<DesiredFollowerOptions>;
  #applied: AppliedDesired | null;
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
      log.warn(
        { code: verdict.code, seq: verdict.seq, stream_seq: m.seq, reason: verdict.message },
        "federation: desired state refused",
      );
      events.append({
        at: this.#o.now(),
        kind: DESIRED_REFUSED,
        data: { code: verdict.code, message: verdict.message, seq: verdict.seq, stream_seq: m.seq },
      });
      return;
    }
    if (verdict.payload === null) return; // the snapshot applied already (replayed after a restart)
    const changed = this.#applyMeasurements(verdict.payload);
    this.#apps = verdict.payload.apps;
    this.#applied = verdict.applied;
    writeApplied(this.#o.stateFile, verdict.applied);
    log.info({ seq: verdict.payload.seq, ...changed }, "federation: desired state applied");
    events.append({
      at: this.#o.now(),
      kind: DESIRED_APPLIED,
      data: { seq: verdict.payload.seq, apps: verdict.payload.apps.length, ...changed },
    });
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

function readApplied(file: string): AppliedDesired | null {
  if (!existsSync(file)) return null;
  try {
    const v = JSON.parse(readFileSync(file, "utf8")) as AppliedDesired;
    if (Number.isInteger(v.seq) && v.seq > 0 && typeof v.digest === "string") return v;
  } catch {
    // reported below
  }
  throw new ValidationError(
    "EE-CONFIG-INVALID",
    `${file} is not a desired-state record; remove it to resync`,
  );
}

function writeApplied(file: string, applied: AppliedDesired): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, JSON.stringify(applied), { mode: 0o600 });
  renameSync(tmp, file);
}
