// cli/oidc-options.ts: the control plane's --oidc-* flags become a verifier config, or a coded error naming the
// flag; a JWKS file read through them verifies a token signed by its key.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { oidcVerifierConfig } from "../../cli/oidc-options.ts";
import { OidcVerifier } from "../../identity/oidc-verifier.ts";
import { CliError, ValidationError } from "../../spec/errors.ts";
import { TEST_AUDIENCE, TEST_ISSUER, testIssuer } from "../helpers/oidc.ts";
import { tempDir } from "../helpers/temp.ts";

const issuer = await testIssuer();

test("no --oidc-* flag: OIDC is off", async (t) => {
  t.is(await oidcVerifierConfig({}), undefined);
});

test("a JWKS file: the config verifies tokens signed by its key", async (t) => {
  const file = join(tempDir(t), "jwks.json");
  writeFileSync(file, JSON.stringify(issuer.jwks));
  const config = await oidcVerifierConfig({ issuer: TEST_ISSUER, audience: TEST_AUDIENCE, jwks: file });
  t.is(config?.jwks.kind, "keys");
  const claims = await new OidcVerifier(config!).verify(await issuer.token());
  t.is(claims.repository_id, "123456");
});

test("a JWKS URL: https anywhere, http only on loopback", async (t) => {
  const c = await oidcVerifierConfig({
    issuer: TEST_ISSUER,
    audience: "aud",
    jwks: "https://token.actions.githubusercontent.com/.well-known/jwks",
  });
  t.deepEqual(c?.jwks, {
    kind: "url",
    url: new URL("https://token.actions.githubusercontent.com/.well-known/jwks"),
  });
  const local = await oidcVerifierConfig({
    issuer: "http://127.0.0.1:9/",
    audience: "aud",
    jwks: "http://127.0.0.1:9/jwks",
  });
  t.is(local?.jwks.kind, "url");
});

test("a missing or unreadable JWKS file is EE-CLI-FILE naming the flag", async (t) => {
  const dir = tempDir(t);
  for (const path of [join(dir, "nope.json"), dir]) {
    const err = await t.throwsAsync(oidcVerifierConfig({ issuer: TEST_ISSUER, audience: "aud", jwks: path }));
    t.true(err instanceof CliError);
    t.is((err as CliError).code, "EE-CLI-FILE");
    t.regex(err!.message, /^--oidc-jwks /);
  }
});

test("bad values are EE-CONFIG-INVALID naming the flag, and the flags go together", async (t) => {
  const dir = tempDir(t);
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const pub = issuer.publicJwk;
  const ok = { issuer: TEST_ISSUER, audience: "aud", jwks: file("ok.json", JSON.stringify({ keys: [pub] })) };
  const cases: [Record<string, string | undefined>, RegExp][] = [
    [{ ...ok, audience: undefined }, /missing --oidc-audience/],
    [{ issuer: TEST_ISSUER }, /missing --oidc-audience, --oidc-jwks/],
    [
      { ...ok, issuer: "http://token.actions.githubusercontent.com" },
      /^--oidc-issuer: expected an https URL/,
    ],
    [{ ...ok, issuer: "not a url" }, /^--oidc-issuer: not a URL/],
    [{ ...ok, audience: "" }, /^--oidc-audience/],
    [{ ...ok, audience: "two words" }, /^--oidc-audience/],
    [{ ...ok, jwks: "http://example.com/jwks" }, /^--oidc-jwks: expected an https URL/],
    [{ ...ok, jwks: file("text.json", "not json") }, /is not JSON/],
    [{ ...ok, jwks: file("empty.json", '{"keys": []}') }, /is not a JWKS/],
    [
      { ...ok, jwks: file("ec.json", '{"keys": [{"kty": "EC", "crv": "P-256", "x": "a", "y": "b"}]}') },
      /not an RSA key/,
    ],
    [{ ...ok, jwks: file("hs.json", JSON.stringify({ keys: [{ ...pub, alg: "HS256" }] })) }, /not RS256/],
    [
      { ...ok, jwks: file("priv.json", JSON.stringify({ keys: [{ ...pub, d: "secret" }] })) },
      /private key members/,
    ],
  ];
  for (const [flags, message] of cases) {
    const err = await t.throwsAsync(oidcVerifierConfig(flags));
    t.true(err instanceof ValidationError, String(err));
    t.is((err as ValidationError).code, "EE-CONFIG-INVALID");
    t.regex(err!.message, message);
  }
});
