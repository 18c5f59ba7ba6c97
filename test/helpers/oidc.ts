// A test stand-in for GitHub's OIDC issuer: an RS256 key pair made in the test, its JWKS, and tokens shaped like
// GitHub Actions ID tokens (claims overridable). No network: tests serve the JWKS themselves when they need a URL.
import { randomUUID } from "node:crypto";
import type { ExecutionContext } from "ava";
import { exportJWK, generateKeyPair, type JSONWebKeySet, type JWK, type JWTPayload, SignJWT } from "jose";

import { type CodeOf, OidcError } from "../../spec/errors.ts";

export const TEST_ISSUER = "https://token.actions.githubusercontent.com";
export const TEST_AUDIENCE = "https://cp.example.test";

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

export interface TestIssuer {
  kid: string;
  publicJwk: JWK;
  privateKey: KeyPair["privateKey"];
  publicKey: KeyPair["publicKey"];
  jwks: JSONWebKeySet;
  /** A signed token: GitHub's claims for repository 123456 of owner 7890 on refs/heads/main, then `claims`. */
  token(claims?: Record<string, unknown>, opts?: { kid?: string; nowS?: number }): Promise<string>;
}

export async function testIssuer(kid = `k-${randomUUID()}`): Promise<TestIssuer> {
  const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" };
  return {
    kid,
    publicJwk,
    privateKey,
    publicKey,
    jwks: { keys: [publicJwk] },
    token: (claims = {}, opts = {}) => {
      const now = opts.nowS ?? Math.floor(Date.now() / 1000);
      const payload: JWTPayload = {
        ...githubClaims(now),
        ...claims,
      };
      // Claims set to undefined are left out, so a test can drop a required one.
      for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
      return new SignJWT(payload)
        .setProtectedHeader({ alg: "RS256", typ: "JWT", kid: opts.kid ?? kid })
        .sign(privateKey);
    },
  };
}

/** The claims GitHub puts in an Actions ID token (values of a made-up repository), valid from `nowS` for 5 min. */
export function githubClaims(nowS: number): JWTPayload {
  return {
    iss: TEST_ISSUER,
    aud: TEST_AUDIENCE,
    sub: "repo:acme/web:ref:refs/heads/main",
    jti: randomUUID(),
    iat: nowS,
    nbf: nowS - 5,
    exp: nowS + 300,
    ref: "refs/heads/main",
    ref_type: "branch",
    repository: "acme/web",
    repository_id: "123456",
    repository_owner: "acme",
    repository_owner_id: "7890",
    run_id: "42",
    workflow: "deploy",
    event_name: "push",
  };
}

/** Awaits `p` and checks it failed with OidcError `code` and that code's HTTP status (503 or 401). */
export async function oidcRefused(t: ExecutionContext, p: Promise<unknown>, code: CodeOf<"EE-OIDC-">) {
  const err = await t.throwsAsync(p);
  t.true(err instanceof OidcError, String(err));
  t.is((err as OidcError).code, code, err?.message);
  t.is((err as OidcError).httpStatus, code === "EE-OIDC-JWKS-UNAVAILABLE" ? 503 : 401);
}

/** base64url of a JSON value, for hand-made tokens (alg none, HS256 over the public key). */
export function b64json(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString("base64url");
}
