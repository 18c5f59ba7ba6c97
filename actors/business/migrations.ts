// Versioned schema of the business DB (DATA_DIR/business.db): accounts, API keys and access tokens, resource
// ownership and the audit chain. Durable state that the runtime DB-wipe drill never touches. Append only, run by
// actors/store/db.ts like the runtime DB's migrations.
import type { Migration } from "../store/migrations.ts";

export const BUSINESS_DB_FILE = "business.db";

export const BUSINESS_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "accounts, keys, owners and the audit chain",
    sql: `
      CREATE TABLE accounts (
        account_id TEXT PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE,
        kind       TEXT NOT NULL CHECK (kind IN ('tenant', 'provider', 'launcher')),
        created_at INTEGER NOT NULL
      );

      -- API keys (origin 'key') and short-lived access tokens (origin 'access', e.g. from an OIDC exchange).
      -- Only the SHA-256 digest of the secret is kept; a key is found by its id, never by a prefix.
      CREATE TABLE api_keys (
        key_id       TEXT PRIMARY KEY,
        account_id   TEXT NOT NULL REFERENCES accounts (account_id),
        origin       TEXT NOT NULL CHECK (origin IN ('key', 'access')),
        digest       BLOB NOT NULL,
        scopes       TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        created_by   TEXT NOT NULL,
        expires_at   INTEGER,
        revoked_at   INTEGER,
        last_used_at INTEGER
      );
      CREATE INDEX api_keys_account ON api_keys (account_id, created_at);

      -- Who owns a resource of the runtime (a deployment, an app name, an agent). Kept here, not beside the
      -- runtime rows, so ownership survives the loss of the runtime DB (rehydrated deployments keep their owner).
      -- account_id NULL: claimed by the admin.
      CREATE TABLE owners (
        kind        TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        account_id  TEXT REFERENCES accounts (account_id),
        created_at  INTEGER NOT NULL,
        PRIMARY KEY (kind, resource_id)
      );
      CREATE INDEX owners_account ON owners (account_id, kind);

      -- The audit chain: hash = SHA-256(prev_hash || canonical JSON of the record), see actors/business/audit-chain.ts.
      CREATE TABLE audit (
        seq       INTEGER PRIMARY KEY,
        at        INTEGER NOT NULL,
        principal TEXT NOT NULL,
        client    TEXT,
        action    TEXT NOT NULL,
        target    TEXT,
        outcome   TEXT NOT NULL,
        details   TEXT,
        prev_hash TEXT NOT NULL,
        hash      TEXT NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: "agent enrollment tokens",
    sql: `
      -- Single-use tokens a provider (or the admin for it) puts in an agent's config (enrollment_token): the agent
      -- presenting it at registration becomes the provider's (owners kind 'agent'), dedicated to one tenant when
      -- dedicated_to is set. agent_id is the agent that used it; the same agent may present it again.
      CREATE TABLE enrollment_tokens (
        token_id     TEXT PRIMARY KEY,
        account_id   TEXT NOT NULL REFERENCES accounts (account_id),
        digest       BLOB NOT NULL,
        dedicated_to TEXT REFERENCES accounts (account_id),
        created_at   INTEGER NOT NULL,
        created_by   TEXT NOT NULL,
        expires_at   INTEGER NOT NULL,
        used_at      INTEGER,
        agent_id     TEXT
      );
      CREATE INDEX enrollment_tokens_agent ON enrollment_tokens (agent_id);
    `,
  },
  {
    version: 3,
    name: "GitHub Actions OIDC bindings",
    sql: `
      -- Which CI may act for an account: a GitHub token whose numeric repository_id (and ref, when set) matches
      -- a binding is exchanged for a short-lived access token with the binding's scopes. Numeric ids, never names:
      -- a renamed or re-created repository does not inherit a binding.
      CREATE TABLE oidc_bindings (
        binding_id    TEXT PRIMARY KEY,
        account_id    TEXT NOT NULL REFERENCES accounts (account_id),
        repository_id INTEGER NOT NULL,
        repository_owner_id INTEGER,
        ref           TEXT,
        environment   TEXT,
        scopes        TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        created_by    TEXT NOT NULL
      );
      CREATE INDEX oidc_bindings_repository ON oidc_bindings (repository_id);
    `,
  },
  {
    version: 4,
    name: "registered apps",
    sql: `
      -- Registered compose files, deployable as name@version: business state (the runtime DB's apps table of its
      -- migration 3 is copied here once and no longer written). Who owns a name is in owners (kind 'app').
      CREATE TABLE apps (
        name         TEXT NOT NULL,
        version      TEXT NOT NULL,
        compose      TEXT NOT NULL,
        compose_hash TEXT NOT NULL,
        health       TEXT,
        created_at   INTEGER NOT NULL,
        PRIMARY KEY (name, version)
      );
    `,
  },
  {
    version: 5,
    name: "spent OIDC tokens",
    sql: `
      -- The jti of every exchanged GitHub Actions token, until the token could no longer verify: each token is
      -- usable once, across restarts of the CP too. Rows past their horizon are deleted as new ones come.
      CREATE TABLE oidc_spent (
        jti   TEXT PRIMARY KEY,
        until INTEGER NOT NULL
      );
      CREATE INDEX oidc_spent_until ON oidc_spent (until);
    `,
  },
];
