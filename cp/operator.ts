// What eectl's commands that start or operate a control plane take from it (`control-plane`, `admin-token`,
// `nats config`): its defaults, flag parsers and config generators, re-exported here so cli/ reaches the CP through
// its composition root and never imports actors/. Cheap to load: no store, no server, no zod.

export { ADMIN_DIGEST_FILE, rotateAdminToken } from "../actors/admin-token.ts";
export { CAPACITY_DEFAULTS } from "../actors/capacity/defaults.ts";
export { parseNodeSizes } from "../actors/capacity/sizes.ts";
export { BILLING_DEFAULTS, CP_DEFAULTS, heartbeatFor } from "../actors/cp-defaults.ts";
export type { FederationOptions } from "../actors/federation/federation.ts";
export { hubConfig, type LinkAuth, leafConfig } from "../actors/federation/server-config.ts";
export { checkDcId } from "../actors/federation/topology.ts";
export { READINESS_DEFAULTS } from "../actors/readiness.ts";
