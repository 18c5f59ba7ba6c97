// A CP's business store read offline, the way `eectl audit verify` and `eectl billing verify` check it without a
// running CP: the audit chain's verifiers, the SQLite file's name and a read-only PostgreSQL session. Loaded lazily.
export { verifyAuditPg, verifyAuditStore } from "../actors/business/audit-verify.ts";
export { BUSINESS_DB_FILE } from "../actors/business/migrations.ts";
export { readPg } from "../actors/business/pg-db.ts";
