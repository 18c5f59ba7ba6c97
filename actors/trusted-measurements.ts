import type { Baseline, NewTrustedMeasurement, Rtmr, TrustedEntry } from "../contract/measurements.ts";
import { ConflictError, NotFoundError, ValidationError } from "../spec/errors.ts";
import type { Db } from "./store/db.ts";
import type { EventLog } from "./store/event-log.ts";
import { perTick } from "./store/per-tick.ts";

export type { Baseline, NewTrustedMeasurement, TrustedEntry } from "../contract/measurements.ts";

/** A measurement the policy refused, as registration reports it. */
export interface RefusedMeasurement {
  node_size: string;
  mrtd: string;
  rtmr: readonly string[];
  vm_name: string;
  agent_id: string;
  at: number;
}

export interface TrustedMeasurementsOptions {
  db: Db;
  events: EventLog;
  /** node_size values an entry may name, besides "*". */
  nodeSizes: ReadonlySet<string>;
  onError: (err: unknown) => void;
  now?: () => number;
}

interface EntryRow extends Omit<TrustedEntry, "rtmr"> {
  rtmr: string | null;
}
interface BaselineRow extends Omit<Baseline, "rtmr"> {
  rtmr: string;
}

export class TrustedMeasurements {
  readonly #o: Required<TrustedMeasurementsOptions>;
  readonly #sql;
  #entries: readonly TrustedEntry[];
  #pending: RefusedMeasurement[] = [];
  readonly #schedule = perTick(() => this.flush());

  constructor(opts: TrustedMeasurementsOptions) {
    this.#o = { now: Date.now, ...opts };
    const { db } = opts;
    this.#sql = {
      entries: db.prepare("SELECT * FROM trusted_measurements ORDER BY id"),
      entry: db.prepare("SELECT * FROM trusted_measurements WHERE id = ?"),
      insert: db.prepare(`INSERT INTO trusted_measurements (node_size, mrtd, rtmr, note, added_by, added_at)
        VALUES (@node_size, @mrtd, @rtmr, @note, @added_by, @added_at)`),
      delete: db.prepare("DELETE FROM trusted_measurements WHERE id = ?"),
      baselines: db.prepare("SELECT * FROM measurement_baselines ORDER BY id"),
      baseline: db.prepare("SELECT * FROM measurement_baselines WHERE id = ?"),
      upsertBaseline: db.prepare(`INSERT INTO measurement_baselines
          (node_size, mrtd, rtmr, first_seen, last_seen, last_vm_name, last_agent_id)
        VALUES (@node_size, @mrtd, @rtmr, @at, @at, @vm_name, @agent_id)
        ON CONFLICT (node_size, mrtd, rtmr) DO UPDATE SET last_seen = MAX(last_seen, excluded.last_seen),
          count = count + 1, last_vm_name = excluded.last_vm_name, last_agent_id = excluded.last_agent_id`),
      // An approved entry covers the baselines it now admits: they drop off the review list.
      deleteCovered: db.prepare(`DELETE FROM measurement_baselines WHERE mrtd = @mrtd
        AND (@node_size = '*' OR node_size = @node_size) AND (@rtmr IS NULL OR rtmr = @rtmr)`),
    };
    this.#entries = this.#load();
  }

  /** The approved entries, from memory: what the measurement policy merges on every quote. */
  list(): readonly TrustedEntry[] {
    return this.#entries;
  }

  baselines(): Baseline[] {
    this.flush();
    return (this.#sql.baselines.all() as BaselineRow[]).map(baselineOf);
  }

  /** Throws EE-REQ-INVALID for an unknown node_size, EE-CONFLICT-STATE when the entry exists. */
  add(input: NewTrustedMeasurement, by: string): TrustedEntry {
    const entry = this.#insert(input, by);
    this.#o.events.append({ at: entry.added_at, kind: "measurement.added", data: { entry, by } });
    return entry;
  }

  /** Throws EE-NOT-FOUND. */
  remove(id: number, by: string): void {
    const row = this.#sql.entry.get(id) as EntryRow | undefined;
    if (!row) throw new NotFoundError("EE-NOT-FOUND", `trusted measurement ${id} does not exist`);
    this.#sql.delete.run(id);
    this.#entries = this.#load();
    this.#o.events.append({
      at: this.#o.now(),
      kind: "measurement.removed",
      data: { entry: entryOf(row), by },
    });
  }

  /** Trusts a baseline's measurements exactly (node_size, MRTD, RTMRs); the baseline is removed. */
  approve(baselineId: number, by: string): TrustedEntry {
    this.flush();
    const row = this.#sql.baseline.get(baselineId) as BaselineRow | undefined;
    if (!row) throw new NotFoundError("EE-NOT-FOUND", `baseline ${baselineId} does not exist`);
    const baseline = baselineOf(row);
    const entry = this.#insert(
      { node_size: baseline.node_size, mrtd: baseline.mrtd, rtmr: baseline.rtmr, note: null },
      by,
    );
    this.#o.events.append({
      at: entry.added_at,
      kind: "measurement.baseline_approved",
      data: { entry, baseline, by },
    });
    return entry;
  }

  /** A registration was refused for these measurements. Queued; never throws. */
  recordBaseline(seen: RefusedMeasurement): void {
    this.#pending.push(seen);
    this.#schedule();
  }

  flush(): void {
    if (this.#pending.length === 0) return;
    const pending = this.#pending;
    this.#pending = [];
    try {
      this.#o.db.transaction(() => {
        for (const p of pending) this.#sql.upsertBaseline.run({ ...p, rtmr: JSON.stringify(p.rtmr) });
      })();
    } catch (err) {
      this.#o.onError(err);
    }
  }

  #insert(input: NewTrustedMeasurement, by: string): TrustedEntry {
    const { node_size } = input;
    if (node_size !== "*" && !this.#o.nodeSizes.has(node_size)) {
      throw new ValidationError(
        "EE-REQ-INVALID",
        `node_size "${node_size}" is not "*" or one of the configured sizes`,
        { allowed: ["*", ...this.#o.nodeSizes] },
      );
    }
    const rtmr = input.rtmr ?? null;
    const key = JSON.stringify(rtmr);
    const same = this.#entries.find(
      (e) => e.node_size === node_size && e.mrtd === input.mrtd && JSON.stringify(e.rtmr) === key,
    );
    if (same) {
      throw new ConflictError("EE-CONFLICT-STATE", `the measurement is already trusted (entry ${same.id})`, {
        id: same.id,
      });
    }
    const row = {
      node_size,
      mrtd: input.mrtd,
      rtmr: rtmr && JSON.stringify(rtmr),
      note: input.note ?? null,
      added_by: by,
      added_at: this.#o.now(),
    };
    const id = this.#o.db.transaction(() => {
      const { lastInsertRowid } = this.#sql.insert.run(row);
      this.#sql.deleteCovered.run(row);
      return Number(lastInsertRowid);
    })();
    this.#entries = this.#load();
    return { id, ...row, rtmr };
  }

  #load(): TrustedEntry[] {
    return (this.#sql.entries.all() as EntryRow[]).map(entryOf);
  }
}

function entryOf(row: EntryRow): TrustedEntry {
  return { ...row, rtmr: row.rtmr === null ? null : (JSON.parse(row.rtmr) as Rtmr) };
}

function baselineOf(row: BaselineRow): Baseline {
  return { ...row, rtmr: JSON.parse(row.rtmr) as Rtmr };
}
