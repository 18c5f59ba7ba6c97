// `eectl control-plane --oidc-issuer URL --oidc-audience AUD --oidc-jwks FILE_OR_URL`: the flags and the
// verifier config they make, checked before the CP starts (all three or none; https URLs, or http on loopback
// for tests; a JWKS file that exists, is JSON and holds RSA public keys only). Light on purpose: commands import
// it at top level, so it imports identity/ for types only (jose loads with the CP).
import { Option } from "clipanion";
import type { JSONWebKeySet } from "jose";
import type { OidcVerifierConfig } from "../identity/oidc-verifier.ts";
import { ValidationError } from "../spec/errors.ts";
import { readInputFile } from "./input-file.ts";

/** Field definitions for the control-plane command: `oidcIssuer = oidcFlags.issuer()` and so on. */
export const oidcFlags = {
  issuer: () =>
    Option.String("--oidc-issuer", {
      description:
        "Accept GitHub Actions OIDC tokens from this issuer (https://token.actions.githubusercontent.com) at POST /api/v2/auth/oidc",
    }),
  audience: () =>
    Option.String("--oidc-audience", {
      description:
        "The audience OIDC tokens must carry (the workflow asks GitHub for it; e.g. this CP's URL)",
    }),
  jwks: () =>
    Option.String("--oidc-jwks", {
      description: "The issuer's keys: a JWKS URL (cached, fetched again for an unknown kid) or a JWKS file",
    }),
};

export interface OidcFlagValues {
  issuer?: string | undefined;
  audience?: string | undefined;
  jwks?: string | undefined;
}

const bad = (flag: string, why: string) =>
  new ValidationError("EE-CONFIG-INVALID", `${flag}: ${why}`, { flag });

/** The verifier config the flags ask for, undefined when none is given (OIDC exchange off). */
export async function oidcVerifierConfig(f: OidcFlagValues): Promise<OidcVerifierConfig | undefined> {
  const given = [
    ["--oidc-issuer", f.issuer],
    ["--oidc-audience", f.audience],
    ["--oidc-jwks", f.jwks],
  ] as const;
  const missing = given.filter(([, v]) => v === undefined).map(([flag]) => flag);
  if (missing.length === 3) return undefined;
  if (missing.length > 0)
    throw new ValidationError(
      "EE-CONFIG-INVALID",
      `OIDC needs --oidc-issuer, --oidc-audience and --oidc-jwks together; missing ${missing.join(", ")}`,
      { flags: missing },
    );
  const issuer = f.issuer!;
  serviceUrl(issuer, "--oidc-issuer");
  const audience = f.audience!;
  if (audience.length === 0 || audience.length > 256 || /\s/.test(audience))
    throw bad("--oidc-audience", "expected 1..256 characters without spaces");
  const jwks = f.jwks!;
  return {
    issuer,
    audience,
    jwks: /^https?:\/\//i.test(jwks)
      ? { kind: "url", url: serviceUrl(jwks, "--oidc-jwks") }
      : { kind: "keys", jwks: await readJwksFile(jwks) },
  };
}

/** An https URL, or http to a loopback host (a test issuer); tokens and keys must not travel in clear. */
function serviceUrl(value: string, flag: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw bad(flag, `not a URL: "${value}"`);
  }
  const loopback = ["127.0.0.1", "[::1]", "localhost"].includes(url.hostname);
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback))
    throw bad(flag, `expected an https URL (http only on loopback), got "${value}"`);
  return url;
}

/** A JWKS file: JSON `{keys: [...]}` of RSA public keys (no private members), usable for RS256. */
async function readJwksFile(path: string): Promise<JSONWebKeySet> {
  const text = (await readInputFile(path, "--oidc-jwks")).toString("utf8");
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw bad("--oidc-jwks", `${path} is not JSON`);
  }
  const keys = (doc as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0)
    throw bad("--oidc-jwks", `${path} is not a JWKS: expected {"keys": [...]} with at least one key`);
  keys.forEach((k: unknown, i) => {
    const key = k as Record<string, unknown> | null;
    if (typeof key !== "object" || key === null || key.kty !== "RSA" || typeof key.n !== "string")
      throw bad("--oidc-jwks", `${path}: keys[${i}] is not an RSA key`);
    if (key.alg !== undefined && key.alg !== "RS256")
      throw bad("--oidc-jwks", `${path}: keys[${i}] is for ${String(key.alg)}, not RS256`);
    // A private key in a file the CP reads as public config is a leak waiting to happen; refuse it.
    if (["d", "p", "q", "dp", "dq", "qi"].some((m) => m in key))
      throw bad("--oidc-jwks", `${path}: keys[${i}] holds private key members; give the public JWKS only`);
  });
  return doc as JSONWebKeySet;
}
