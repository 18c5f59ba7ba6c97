// The CP's stores, the first components to start and the last to stop: the runtime DB (events, deployments,
// trusted measurements, written behind and flushed on stop), the business state (SQLite or PostgreSQL) and what
// reads it at start (identity, enrollments). Imports actors/ (stores, business) and lib/log.
import { loadOrCreateSecret, STORE_KEY_FILE } from "../actors/bootstrap-secret.ts";
import { Enrollments } from "../actors/business/enrollment.ts";
import { Identity } from "../actors/business/identity.ts";
import { openBusinessState } from "../actors/business/open.ts";
import { openDatabase } from "../actors/store/db.ts";
import { DeploymentStore } from "../actors/store/deployment-store.ts";
import { EventLog } from "../actors/store/event-log.ts";
import { TextSealer } from "../actors/store/sealed-text.ts";
import { TrustedMeasurements } from "../actors/trusted-measurements.ts";
import type { Logger } from "../lib/log.ts";
import type { Component } from "./components.ts";

export interface StoreOptions {
  dataDir: string;
  /** `postgres://…`: business state in PostgreSQL; else SQLite business.db under dataDir. */
  businessDb?: string;
  log: Logger;
  adminDigest: Buffer;
  nodeSizes: ReadonlySet<string>;
}

export async function startStores(start: <T>(c: Component<T>) => Promise<T>, o: StoreOptions) {
  const { log, nodeSizes } = o;
  const db = await start({
    name: "runtime-db",
    start: () => openDatabase(o.dataDir),
    stop: (d) => d.close(),
  });
  // Compose texts are sealed at rest in both databases under the one store key.
  const sealer = new TextSealer(loadOrCreateSecret(o.dataDir, STORE_KEY_FILE));
  // Durable business state (accounts, keys, owners, apps, the audit chain, the ledger, capacity) in its own file or
  // in PostgreSQL: the runtime DB above may be lost (the DB-wipe drill) without touching it.
  const state = await start({
    name: "business-state",
    start: () =>
      openBusinessState({
        dataDir: o.dataDir,
        ...(o.businessDb ? { url: o.businessDb } : {}),
        sealer,
        onError: (err) => log.error({ err }, "business store write failed"),
      }),
    stop: (s) => s.close(),
  });
  log.info({ business_db: state.where }, "business state opened");
  const identity = await start({
    name: "identity",
    start: () => new Identity({ store: state.business, adminDigest: o.adminDigest, log }),
    stop: (i) => i.stop(),
  });
  const enrollments = await start({
    name: "enrollments",
    start: async () => {
      const e = new Enrollments({ store: state.business, log });
      await e.load();
      return e;
    },
  });
  const events = await start({
    name: "event-log",
    start: () => new EventLog(db, (err) => log.error({ err }, "event log write failed")),
    stop: (e) => e.flush(),
  });
  const deploymentStore = await start({
    name: "deployment-store",
    start: () =>
      new DeploymentStore(db, sealer, (err) => log.error({ err }, "deployment record write failed")),
    stop: (s) => s.flush(),
  });
  const trusted = await start({
    name: "trusted-measurements",
    start: () =>
      new TrustedMeasurements({
        db,
        events,
        nodeSizes,
        onError: (err) => log.error({ err }, "measurement baseline write failed"),
      }),
    stop: (t) => t.flush(),
  });
  return { db, state, identity, enrollments, events, deploymentStore, trusted };
}
