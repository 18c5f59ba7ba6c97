// Agent enrollment: single-use tokens (`eet_<id>_<secret>`) a provider puts in an agent's config. The agent
// presents it in `register`; the CP binds the agent to the provider's account (and, when the token says so,
// dedicates it to one tenant) at that registration. Tokens are held in memory (a provider mints few), so the
// check runs inside the synchronous registration gate; the binding is written through to the business store
// with its audit record. Imports spec/ and actors/business only.
import type { NewEnrollment } from "../../contract/identity.ts";
import type { Logger } from "../../lib/log.ts";
import { NotFoundError, RegistrationError, ValidationError } from "../../spec/errors.ts";
import { type Principal, principalName } from "../../spec/scopes.ts";
import { newKeyToken, parseKeyToken, secretMatches } from "./api-keys.ts";
import type { BusinessStore, EnrollmentRow } from "./store.ts";

export type { NewEnrollment } from "../../contract/identity.ts";

/** A token not used within this long expires (the default of `expires_in_s`). */
export const ENROLLMENT_TTL_S = 7 * 86_400;

export class Enrollments {
  readonly #store: BusinessStore;
  readonly #now: () => number;
  readonly #log: Logger;
  readonly #tokens = new Map<string, EnrollmentRow>();
  /** agent id → the tenant it is dedicated to. */
  readonly #dedicated = new Map<string, string>();

  constructor(o: { store: BusinessStore; log: Logger; now?: () => number }) {
    this.#store = o.store;
    this.#log = o.log;
    this.#now = o.now ?? Date.now;
  }

  async load(): Promise<void> {
    for (const row of await this.#store.enrollments()) this.#remember(row);
  }

  /**
   * A new token for the provider account `accountId`, minted by the admin or by a key of that provider (with
   * agents:enroll; the REST route checks the scope). `dedicatedTo` names a tenant account.
   */
  async mint(
    by: Principal,
    client: string,
    accountId: string,
    input: { expires_in_s?: number; dedicated_to?: string },
  ): Promise<NewEnrollment> {
    const account = await this.#store.account(accountId);
    if (!account || (by.kind === "account" && by.accountId !== accountId))
      throw new NotFoundError("EE-NOT-FOUND", `account ${accountId} does not exist`);
    if (account.kind !== "provider")
      throw new ValidationError("EE-REQ-INVALID", "enrollment tokens are for provider accounts");
    if (input.dedicated_to !== undefined) {
      const tenant = await this.#store.account(input.dedicated_to);
      if (tenant?.kind !== "tenant")
        throw new ValidationError(
          "EE-REQ-INVALID",
          `dedicated_to: ${input.dedicated_to} is not a tenant account`,
        );
    }
    const { keyId, token, digest } = newKeyToken("eet");
    const now = this.#now();
    const row: EnrollmentRow = {
      token_id: keyId,
      account_id: accountId,
      digest,
      dedicated_to: input.dedicated_to ?? null,
      created_at: now,
      created_by: principalName(by),
      expires_at: now + (input.expires_in_s ?? ENROLLMENT_TTL_S) * 1000,
      used_at: null,
      agent_id: null,
    };
    await this.#store.createEnrollment(row, {
      principal: principalName(by),
      client,
      action: "enrollment_token.create",
      target: `enrollment:${keyId}`,
      outcome: "ok",
      details: { account_id: accountId, dedicated_to: row.dedicated_to, expires_at: row.expires_at },
    });
    this.#remember(row);
    return { token_id: keyId, token, expires_at: row.expires_at, dedicated_to: row.dedicated_to };
  }

  /**
   * At registration, after the gate proved the agent holds its key: no token leaves the agent unowned (the
   * admin's); a token that is unknown, expired or used by another agent refuses the registration
   * (EE-REG-ENROLLMENT); a fresh one binds the agent. The same agent presenting its token again is fine.
   */
  register(token: string | undefined, agentId: string, at: number): void {
    if (token === undefined) return;
    const parsed = parseKeyToken(token, "eet");
    const row = parsed && this.#tokens.get(parsed.keyId);
    if (!parsed || !row || !secretMatches(parsed.secret, row.digest))
      throw new RegistrationError("EE-REG-ENROLLMENT", "the enrollment token is not valid");
    if (row.agent_id === agentId) return;
    if (row.agent_id !== null)
      throw new RegistrationError("EE-REG-ENROLLMENT", "the enrollment token was used by another agent");
    if (row.expires_at <= at)
      throw new RegistrationError("EE-REG-ENROLLMENT", "the enrollment token has expired");
    // Taken now, in memory: a second agent racing with the same token is refused before the write lands.
    row.agent_id = agentId;
    row.used_at = at;
    this.#remember(row);
    this.#store
      .useEnrollment(row.token_id, agentId, at, {
        principal: "system",
        action: "agent.enroll",
        target: `agent:${agentId}`,
        outcome: "ok",
        details: { token_id: row.token_id, account_id: row.account_id, dedicated_to: row.dedicated_to },
      })
      .catch((err: unknown) => this.#log.error({ err, agent_id: agentId }, "recording an enrollment failed"));
  }

  /** The tenant an agent is dedicated to, if any. */
  dedicatedTo(agentId: string): string | undefined {
    return this.#dedicated.get(agentId);
  }

  #remember(row: EnrollmentRow): void {
    this.#tokens.set(row.token_id, row);
    if (row.agent_id !== null) {
      if (row.dedicated_to !== null) this.#dedicated.set(row.agent_id, row.dedicated_to);
      else this.#dedicated.delete(row.agent_id);
    }
  }
}
