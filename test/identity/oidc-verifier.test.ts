// identity/oidc-verifier.ts: GitHub Actions ID tokens signed by a key pair made here; every way a token can be
// wrong is refused with its own EE-OIDC-* code, and a JWKS served from a loopback URL is fetched again on an
// unknown kid.
import { createHmac } from "node:crypto";
import { createServer, type Server } from "node:http";
import test from "ava";
import { exportSPKI, SignJWT } from "jose";
import { type JwksSource, OidcVerifier } from "../../identity/oidc-verifier.ts";
import {
  b64json,
  githubClaims,
  oidcRefused,
  TEST_AUDIENCE,
  TEST_ISSUER,
  testIssuer,
} from "../helpers/oidc.ts";
import { closedPort } from "../helpers/temp.ts";

const issuer = await testIssuer();
const verifier = (jwks: JwksSource = { kind: "keys", jwks: issuer.jwks }, now?: () => number) =>
  new OidcVerifier({ issuer: TEST_ISSUER, audience: TEST_AUDIENCE, jwks, ...(now ? { now } : {}) });

const nowS = () => Math.floor(Date.now() / 1000);

test("a token signed RS256 by a key of the JWKS, with the issuer, audience and GitHub's claims, verifies", async (t) => {
  const claims = await verifier().verify(await issuer.token({ environment: "production" }));
  t.is(claims.repository_id, "123456");
  t.is(claims.repository_owner_id, "7890");
  t.is(claims.ref, "refs/heads/main");
  t.is(claims.environment, "production");
});

test("HS256 is refused, signed with a secret or with the RSA public key as the HMAC secret (the classic attack)", async (t) => {
  const v = verifier();
  const withSecret = await new SignJWT(githubClaims(nowS()))
    .setProtectedHeader({ alg: "HS256", kid: issuer.kid })
    .sign(new TextEncoder().encode("a shared secret of thirty-two bytes!"));
  await oidcRefused(t, v.verify(withSecret), "EE-OIDC-ALGORITHM");
  // A verifier that let the header pick the algorithm would check this HMAC with the public key it holds.
  for (const secret of [await exportSPKI(issuer.publicKey), JSON.stringify(issuer.publicJwk)]) {
    const head = `${b64json({ alg: "HS256", typ: "JWT", kid: issuer.kid })}.${b64json(githubClaims(nowS()))}`;
    const mac = createHmac("sha256", secret).update(head).digest("base64url");
    await oidcRefused(t, v.verify(`${head}.${mac}`), "EE-OIDC-ALGORITHM");
  }
});

test("alg none is refused, with or without a signature part", async (t) => {
  const head = `${b64json({ alg: "none", typ: "JWT" })}.${b64json(githubClaims(nowS()))}`;
  await oidcRefused(t, verifier().verify(`${head}.`), "EE-OIDC-ALGORITHM");
  await oidcRefused(t, verifier().verify(`${head}.c2ln`), "EE-OIDC-ALGORITHM");
});

test("other RSA algorithms (RS512, PS256) are refused too: RS256 only", async (t) => {
  const { generateKeyPair, exportJWK } = await import("jose");
  for (const alg of ["RS512", "PS256"]) {
    const kp = await generateKeyPair(alg, { extractable: true });
    const jwk = { ...(await exportJWK(kp.publicKey)), kid: "other", alg };
    const token = await new SignJWT(githubClaims(nowS()))
      .setProtectedHeader({ alg, kid: "other" })
      .sign(kp.privateKey);
    await oidcRefused(
      t,
      verifier({ kind: "keys", jwks: { keys: [jwk] } }).verify(token),
      "EE-OIDC-ALGORITHM",
    );
  }
});

test("wrong audience, wrong issuer: refused with their own codes", async (t) => {
  await oidcRefused(
    t,
    verifier().verify(await issuer.token({ aud: "https://other.example" })),
    "EE-OIDC-AUDIENCE",
  );
  await oidcRefused(
    t,
    verifier().verify(await issuer.token({ iss: "https://evil.example" })),
    "EE-OIDC-ISSUER",
  );
});

test("a signature by another key, or a kid the JWKS lacks, is refused", async (t) => {
  const other = await testIssuer(issuer.kid);
  await oidcRefused(t, verifier().verify(await other.token()), "EE-OIDC-SIGNATURE");
  await oidcRefused(
    t,
    verifier().verify(await issuer.token({}, { kid: "unknown-kid" })),
    "EE-OIDC-SIGNATURE",
  );
  const [h, p, s] = (await issuer.token()).split(".");
  const tampered = `${h}.${b64json({ ...JSON.parse(Buffer.from(p!, "base64url").toString()), repository_id: "1" })}.${s}`;
  await oidcRefused(t, verifier().verify(tampered), "EE-OIDC-SIGNATURE");
});

test("time: expired beyond the tolerance, issued longer ago than the maximum age, or not valid yet: refused", async (t) => {
  const start = nowS();
  let now = start * 1000;
  const v = verifier(undefined, () => now);
  // GitHub's tokens live about 5 minutes; the maximum age (15 min) bites a token whose exp is far out.
  const token = await issuer.token({ exp: start + 3600 }, { nowS: start });
  now = (start + 15 * 60 + 20) * 1000; // within the 30 s tolerance
  t.truthy(await v.verify(token));
  now = (start + 15 * 60 + 31) * 1000;
  await oidcRefused(t, v.verify(token), "EE-OIDC-TOO-OLD");
  const short = await issuer.token({}, { nowS: start });
  now = (start + 300 + 29) * 1000;
  t.truthy(await v.verify(short));
  now = (start + 300 + 30) * 1000;
  await oidcRefused(t, v.verify(short), "EE-OIDC-EXPIRED");
  now = start * 1000;
  await oidcRefused(
    t,
    v.verify(await issuer.token({ nbf: start + 120 }, { nowS: start })),
    "EE-OIDC-NOT-YET-VALID",
  );
  await oidcRefused(
    t,
    v.verify(await issuer.token({ iat: start + 120, nbf: undefined })),
    "EE-OIDC-NOT-YET-VALID",
  );
});

test("required claims: jti, ref, exp, numeric repository_id and repository_owner_id", async (t) => {
  const v = verifier();
  for (const claims of [
    { jti: undefined },
    { ref: undefined },
    { exp: undefined },
    { iat: undefined },
    { repository_id: undefined },
    { repository_owner_id: undefined },
    { repository_id: 123456 },
    { repository_id: "acme/web" },
    { repository_id: "0123" },
    { repository_owner_id: "acme" },
    { jti: "" },
    { jti: "x".repeat(600) },
    { environment: 5 },
  ])
    await oidcRefused(t, v.verify(await issuer.token(claims)), "EE-OIDC-CLAIMS");
});

test("input that is no token: not a string, empty, too large, not a JWS", async (t) => {
  const v = verifier();
  for (const bad of [undefined, 42, "", "a.b", "x".repeat(20_000), "not.a.jwt"])
    await oidcRefused(t, v.verify(bad), "EE-OIDC-MALFORMED");
});

/** A JWKS URL on loopback; `keys` can change under it, `hang` makes it never answer; counts fetches. */
async function jwksServer(t: import("ava").ExecutionContext) {
  const state = { keys: issuer.jwks.keys, fetches: 0, hang: false };
  const server: Server = createServer((_req, res) => {
    state.fetches++;
    if (state.hang) return;
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ keys: state.keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const { port } = server.address() as { port: number };
  return { state, url: new URL(`http://127.0.0.1:${port}/.well-known/jwks`) };
}

test("a JWKS URL is fetched once, cached, and fetched again for a kid it lacks (key rotation)", async (t) => {
  const { state, url } = await jwksServer(t);
  const v = verifier({ kind: "url", url, cooldownMs: 0 });
  t.truthy(await v.verify(await issuer.token()));
  t.truthy(await v.verify(await issuer.token()));
  t.is(state.fetches, 1);
  const rotated = await testIssuer();
  state.keys = [...issuer.jwks.keys, ...rotated.jwks.keys];
  t.is((await v.verify(await rotated.token())).repository_id, "123456");
  t.is(state.fetches, 2);
  // A kid nobody publishes: fetched once more, then refused.
  await oidcRefused(t, v.verify(await issuer.token({}, { kid: "nobody" })), "EE-OIDC-SIGNATURE");
  t.is(state.fetches, 3);
});

test("within the cooldown an unknown kid does not fetch the JWKS again (no fetch per forged token)", async (t) => {
  const { state, url } = await jwksServer(t);
  const v = verifier({ kind: "url", url, cooldownMs: 60_000 });
  t.truthy(await v.verify(await issuer.token()));
  for (let i = 0; i < 5; i++)
    await oidcRefused(t, v.verify(await issuer.token({}, { kid: `forged-${i}` })), "EE-OIDC-SIGNATURE");
  t.is(state.fetches, 1);
});

test("a JWKS URL that hangs or refuses connections: EE-OIDC-JWKS-UNAVAILABLE (503), within the timeout", async (t) => {
  const { state, url } = await jwksServer(t);
  state.hang = true;
  const started = Date.now();
  const token = await issuer.token();
  await oidcRefused(
    t,
    verifier({ kind: "url", url, timeoutMs: 300 }).verify(token),
    "EE-OIDC-JWKS-UNAVAILABLE",
  );
  t.true(Date.now() - started < 10_000);
  const closed = new URL(`http://127.0.0.1:${await closedPort()}/jwks`);
  await oidcRefused(
    t,
    verifier({ kind: "url", url: closed }).verify(await issuer.token()),
    "EE-OIDC-JWKS-UNAVAILABLE",
  );
});
