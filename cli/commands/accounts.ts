// `eectl accounts create|list|show` and `eectl keys create|list|revoke`: the admin managing accounts and API
// keys over REST (an account's own key may list its keys and mint narrower ones). A new key's token is printed
// once; the CP keeps only its digest.
import { Command, Option } from "clipanion";
import type { accountJson, keyJson } from "../../transport/rest/accounts.ts";
import { OperatorCommand } from "../operator-command.ts";
import { jsonFlag, parsePositiveInt } from "../options.ts";
import { table } from "../table.ts";

type AccountJson = ReturnType<typeof accountJson>;
type KeyJson = ReturnType<typeof keyJson>;

const kv = (o: Record<string, unknown>) =>
  `${Object.entries(o)
    .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(",") : (v ?? "-")}`)
    .join("\n")}\n`;

export class AccountsCreateCommand extends OperatorCommand {
  static override paths = [["accounts", "create"]];
  static override usage = Command.Usage({
    description: "Create an account (admin only): a tenant, a provider or a launcher",
    examples: [["A tenant", "eectl accounts create --name acme --kind tenant"]],
  });
  name = Option.String("--name", { required: true, description: "Account name (a-z, 0-9, . _ -)" });
  kind = Option.String("--kind", { required: true, description: "tenant, provider or launcher" });
  asJson = jsonFlag("Print {account_id, name, kind} as JSON");

  async run(): Promise<number> {
    const body = await this.client().post<AccountJson>("/api/v2/accounts", {
      name: this.name,
      kind: this.kind,
    });
    this.print(this.asJson, body, kv);
    return 0;
  }
}

export class AccountsListCommand extends OperatorCommand {
  static override paths = [["accounts", "list"]];
  static override usage = Command.Usage({ description: "List accounts (an account's key sees its own)" });
  asJson = jsonFlag();

  async run(): Promise<number> {
    const body = await this.client().get<{ accounts: AccountJson[] }>("/api/v2/accounts");
    this.print(this.asJson, body, ({ accounts }) =>
      table(
        ["ACCOUNT", "NAME", "KIND", "CREATED"],
        accounts.map((a) => [a.account_id, a.name, a.kind, a.created_at]),
      ),
    );
    return 0;
  }
}

export class AccountsShowCommand extends OperatorCommand {
  static override paths = [["accounts", "show"]];
  static override usage = Command.Usage({ description: "Show one account" });
  id = Option.String({ name: "ACCOUNT_ID" });
  asJson = jsonFlag();

  async run(): Promise<number> {
    const body = await this.client().get<AccountJson>(`/api/v2/accounts/${encodeURIComponent(this.id)}`);
    this.print(this.asJson, body, kv);
    return 0;
  }
}

export class KeysCreateCommand extends OperatorCommand {
  static override paths = [["keys", "create"]];
  static override usage = Command.Usage({
    description: "Mint an API key for an account; its token is printed once",
    details:
      "Scopes by account kind are in spec/scopes.md (tenant: deploy, read; provider: agents:read, ...).",
    examples: [
      ["A CI key", "eectl keys create --account acc_… --scopes deploy,read"],
      ["Expiring in a day", "eectl keys create --account acc_… --scopes read --expires-in-s 86400 --json"],
    ],
  });
  account = Option.String("--account", { required: true, description: "The account's id (acc_…)" });
  scopes = Option.String("--scopes", { required: true, description: "Comma-separated scopes" });
  expiresInS = Option.String("--expires-in-s", { description: "Lifetime in seconds (default: no expiry)" });
  asJson = jsonFlag("Print {key_id, token, expires_at} as JSON");

  async run(): Promise<number> {
    const expires = parsePositiveInt(this.expiresInS, "--expires-in-s");
    const body = await this.client().post<{ key_id: string; token: string; expires_at: string | null }>(
      `/api/v2/accounts/${encodeURIComponent(this.account)}/keys`,
      {
        scopes: this.scopes.split(",").map((s) => s.trim()),
        ...(expires !== undefined ? { expires_in_s: expires } : {}),
      },
    );
    this.print(this.asJson, body, kv);
    return 0;
  }
}

export class KeysListCommand extends OperatorCommand {
  static override paths = [["keys", "list"]];
  static override usage = Command.Usage({ description: "List an account's keys (never their secrets)" });
  account = Option.String("--account", { required: true, description: "The account's id (acc_…)" });
  asJson = jsonFlag();

  async run(): Promise<number> {
    const body = await this.client().get<{ keys: KeyJson[] }>(
      `/api/v2/accounts/${encodeURIComponent(this.account)}/keys`,
    );
    this.print(this.asJson, body, ({ keys }) =>
      table(
        ["KEY", "ORIGIN", "SCOPES", "EXPIRES", "REVOKED", "LAST USED"],
        keys.map((k) => [
          k.key_id,
          k.origin,
          k.scopes.join(","),
          k.expires_at ?? "-",
          k.revoked_at ?? "-",
          k.last_used_at ?? "-",
        ]),
      ),
    );
    return 0;
  }
}

export class KeysRevokeCommand extends OperatorCommand {
  static override paths = [["keys", "revoke"]];
  static override usage = Command.Usage({ description: "Revoke a key at once" });
  id = Option.String({ name: "KEY_ID" });
  asJson = jsonFlag("Print {key_id, revoked} as JSON");

  async run(): Promise<number> {
    await this.client().delete(`/api/v2/keys/${encodeURIComponent(this.id)}`);
    this.print(this.asJson, { key_id: this.id, revoked: true }, (r) => `revoked key ${r.key_id}\n`);
    return 0;
  }
}

export class EnrollmentTokensCreateCommand extends OperatorCommand {
  static override paths = [["enrollment-tokens", "create"]];
  static override usage = Command.Usage({
    description: "Mint a single-use agent enrollment token for a provider account; printed once",
    details: `
      Put the token in the agent's config as \`enrollment_token\`: at registration the agent becomes the provider's.
      With --dedicated-to, the agent takes deployments from that tenant only (others: EE-PLACE-DEDICATED).
    `,
    examples: [
      ["For a provider", "eectl enrollment-tokens create --account acc_… --json"],
      ["Dedicated to a tenant", "eectl enrollment-tokens create --account acc_… --dedicated-to acc_…"],
    ],
  });
  account = Option.String("--account", { required: true, description: "The provider account's id (acc_…)" });
  dedicatedTo = Option.String("--dedicated-to", { description: "A tenant account's id (acc_…)" });
  expiresInS = Option.String("--expires-in-s", {
    description: "Unused for this long, it expires (default 7 days)",
  });
  asJson = jsonFlag("Print {token_id, token, expires_at, dedicated_to} as JSON");

  async run(): Promise<number> {
    const expires = parsePositiveInt(this.expiresInS, "--expires-in-s");
    const body = await this.client().post<Record<string, unknown>>(
      `/api/v2/accounts/${encodeURIComponent(this.account)}/enrollment-tokens`,
      {
        ...(this.dedicatedTo ? { dedicated_to: this.dedicatedTo } : {}),
        ...(expires !== undefined ? { expires_in_s: expires } : {}),
      },
    );
    this.print(this.asJson, body, kv);
    return 0;
  }
}
