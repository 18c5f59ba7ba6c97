// The business store's port: durable accounts, keys, resource owners and the audit chain, apart from the
// disposable runtime DB. Every change takes the audit entry that records it and writes both in one transaction,
// so an adapter (SQLite now: sqlite-store.ts; PostgreSQL later) needs no transaction spanning calls. Async, since
// a networked database answers asynchronously. Types only.
import type { Account, KeyRow, OidcBindingRow, OwnedKind, Owner } from "../../contract/identity.ts";
import type { AppRow } from "../store/deployment-store.ts";
import type { AuditEntry, AuditRecord } from "./audit-chain.ts";

export type { Account, KeyRow, OidcBindingRow, OwnedKind, Owner } from "../../contract/identity.ts";

export interface EnrollmentRow {
  token_id: string;
  /** The provider account the enrolled agent will belong to. */
  account_id: string;
  digest: Buffer;
  /** The one tenant the agent will take deployments from; null: any. */
  dedicated_to: string | null;
  created_at: number;
  created_by: string;
  expires_at: number;
  used_at: number | null;
  agent_id: string | null;
}

export interface BusinessStore {
  createAccount(account: Account, audit: AuditEntry): Promise<void>;
  accounts(): Promise<Account[]>;
  account(accountId: string): Promise<Account | undefined>;

  createKey(key: KeyRow, audit: AuditEntry): Promise<void>;
  key(keyId: string): Promise<KeyRow | undefined>;
  keys(accountId: string): Promise<KeyRow[]>;
  /** False when the key does not exist or was revoked already (nothing is written then). */
  revokeKey(keyId: string, at: number, audit: AuditEntry): Promise<boolean>;
  /** Notes a use; not audited (reads are not changes). */
  touchKey(keyId: string, at: number): Promise<void>;

  owner(kind: OwnedKind, resourceId: string): Promise<Owner>;
  /** Resource ids of `kind` owned by the account. */
  owned(kind: OwnedKind, accountId: string): Promise<Set<string>>;
  /**
   * Records `accountId` (null: admin) as the owner unless someone else is; true when it is (now or already) the
   * owner. The audit entry is written only with a new claim.
   */
  claim(kind: OwnedKind, resourceId: string, accountId: string | null, audit: AuditEntry): Promise<boolean>;

  createEnrollment(row: EnrollmentRow, audit: AuditEntry): Promise<void>;
  /** Every enrollment token (a provider mints few): the CP checks registrations against them in memory. */
  enrollments(): Promise<EnrollmentRow[]>;
  /**
   * Marks the token used by `agentId` and records the agent's owner (the token's account), with the audit record,
   * in one transaction; false when it was used already (nothing is written then).
   */
  useEnrollment(tokenId: string, agentId: string, at: number, audit: AuditEntry): Promise<boolean>;

  createBinding(row: OidcBindingRow, audit: AuditEntry): Promise<void>;
  /** All bindings, or those of one repository (what an OIDC exchange looks up). */
  bindings(repositoryId?: number): Promise<OidcBindingRow[]>;

  /**
   * Spends an OIDC token's jti until `until` (ms epoch): true the first time, false for a replay; forgets jtis
   * whose horizon passed. Atomic (identity/oidc-replay.ts's ReplayStore).
   */
  spendJti(jti: string, until: number, now: number): Promise<boolean>;

  /** A record on its own: a refusal, or a change of the runtime DB (written after it, see ARCHITECTURE.md). */
  audit(entry: AuditEntry): Promise<AuditRecord>;
  /** Records after `after`; with `accountId`, only those an account's keys were the principal of. */
  auditAfter(after: number, limit: number, accountId?: string): Promise<AuditRecord[]>;

  close(): void;
}

/**
 * Registered apps (name@version). Reads are synchronous, because the deploy path resolves `name@version` while
 * it places: the SQLite store answers from its file; a networked adapter keeps the registry in memory (apps are
 * few). A put resolves once the app and its audit record are committed.
 */
export interface AppRegistry {
  /** False when name@version exists already (versions are immutable); else written with its audit record. */
  putApp(app: AppRow, audit: AuditEntry | null): Promise<boolean>;
  /** name@version, or the newest version of name when version is undefined. */
  app(name: string, version?: string): AppRow | undefined;
  apps(): AppRow[];
}
