// Request signing as signer and verifier see it: the canonical string is pinned, a signed request verifies once,
// and every way of getting it wrong (secret, signature, body, path, method, clock, replay, no secret yet) is
// refused with its EE-AUTH-* code.
import { createHash, createHmac } from "node:crypto";
import test, { type ExecutionContext } from "ava";
import { AuthError } from "../../spec/errors.ts";
import {
  createRequestVerifier,
  SIGNATURE_HEADER,
  signedHeaders,
  signRequest,
  TIMESTAMP_HEADER,
  type VerifiableRequest,
} from "../../transport/request-signing.ts";

const secret = new Uint8Array(32).fill(7);
const otherSecret = new Uint8Array(32).fill(8);
const T0 = 1_700_000_000_000;
const body = Buffer.from('{"deployment_id":"d-1"}');

function signed(over: Partial<VerifiableRequest> = {}, at = T0, key = secret): VerifiableRequest {
  return {
    method: "POST",
    path: "/api/deploy",
    body,
    headers: signedHeaders(key, "POST", "/api/deploy", body, at),
    ...over,
  };
}

function verifierAt(clock: { now: number }, opts: { skewMs?: number; replayCap?: number } = {}) {
  return createRequestVerifier({ secret: () => secret, now: () => clock.now, ...opts });
}

function refused(t: ExecutionContext, fn: () => void, code: AuthError["code"], message?: RegExp): void {
  const err = t.throws(fn, { instanceOf: AuthError });
  t.is(err?.code, code);
  if (message) t.regex(err?.message ?? "", message);
}

test("the signature is lowercase hex HMAC-SHA256 over EE1, method, path with query, timestamp and body hash", (t) => {
  const path = "/api/deploy?dry=1";
  const canonical = `EE1\nPOST\n${path}\n${T0}\n${createHash("sha256").update(body).digest("hex")}`;
  const expected = createHmac("sha256", secret).update(canonical).digest("hex");
  t.is(signRequest(secret, { method: "post", path, body, timestamp: T0 }), expected);
  t.deepEqual(signedHeaders(secret, "POST", path, body, T0), {
    [TIMESTAMP_HEADER]: String(T0),
    [SIGNATURE_HEADER]: expected,
  });
  t.is(TIMESTAMP_HEADER, "x-ee-timestamp");
  t.is(SIGNATURE_HEADER, "x-ee-signature");
});

test("a signed request verifies, also at the edges of the skew window", (t) => {
  const clock = { now: T0 };
  const verifier = verifierAt(clock);
  t.notThrows(() => verifier.verify(signed()));
  t.notThrows(() => verifier.verify(signed({}, T0 - 30_000)));
  t.notThrows(() => verifier.verify(signed({}, T0 + 30_000)));
  // An empty body signs and verifies like any other.
  const empty = new Uint8Array(0);
  t.notThrows(() =>
    verifier.verify({
      method: "POST",
      path: "/api/undeploy",
      body: empty,
      headers: signedHeaders(secret, "POST", "/api/undeploy", empty, T0 + 1),
    }),
  );
});

test("wrong secret, flipped signature, tampered body, path or method: EE-AUTH-SIGNATURE", (t) => {
  const verifier = verifierAt({ now: T0 });
  refused(t, () => verifier.verify(signed({}, T0, otherSecret)), "EE-AUTH-SIGNATURE", /does not verify/);
  const good = signed();
  const sig = String(good.headers[SIGNATURE_HEADER]);
  const flipped = `${sig.slice(0, -1)}${sig.endsWith("0") ? "1" : "0"}`;
  refused(
    t,
    () => verifier.verify({ ...good, headers: { ...good.headers, [SIGNATURE_HEADER]: flipped } }),
    "EE-AUTH-SIGNATURE",
  );
  refused(
    t,
    () => verifier.verify(signed({ body: Buffer.from('{"deployment_id":"d-2"}') })),
    "EE-AUTH-SIGNATURE",
  );
  refused(t, () => verifier.verify(signed({ path: "/api/undeploy" })), "EE-AUTH-SIGNATURE");
  refused(t, () => verifier.verify(signed({ path: "/api/deploy?x=1" })), "EE-AUTH-SIGNATURE");
  refused(t, () => verifier.verify(signed({ method: "PUT" })), "EE-AUTH-SIGNATURE");
  // A timestamp changed after signing is a different canonical string, not a skew.
  refused(
    t,
    () => verifier.verify({ ...good, headers: { ...good.headers, [TIMESTAMP_HEADER]: String(T0 + 1) } }),
    "EE-AUTH-SIGNATURE",
  );
  // None of these used up the real request.
  t.notThrows(() => verifier.verify(good));
});

test("missing, malformed or repeated headers: EE-AUTH-SIGNATURE naming what is wrong", (t) => {
  const verifier = verifierAt({ now: T0 });
  const good = signed();
  const sig = String(good.headers[SIGNATURE_HEADER]);
  const cases: [string, VerifiableRequest["headers"], RegExp][] = [
    ["no headers", {}, /x-ee-timestamp and x-ee-signature/],
    ["no signature", { [TIMESTAMP_HEADER]: String(T0) }, /x-ee-signature/],
    ["no timestamp", { [SIGNATURE_HEADER]: sig }, /x-ee-timestamp/],
    [
      "timestamp not ms",
      { [TIMESTAMP_HEADER]: "2023-11-14T22:13:20Z", [SIGNATURE_HEADER]: sig },
      /x-ee-timestamp/,
    ],
    ["uppercase signature", { [TIMESTAMP_HEADER]: String(T0), [SIGNATURE_HEADER]: sig.toUpperCase() }, /hex/],
    ["short signature", { [TIMESTAMP_HEADER]: String(T0), [SIGNATURE_HEADER]: sig.slice(2) }, /hex/],
    [
      "repeated signature",
      { [TIMESTAMP_HEADER]: String(T0), [SIGNATURE_HEADER]: [sig, sig] },
      /x-ee-signature/,
    ],
  ];
  for (const [title, headers, message] of cases) {
    const err = t.throws(() => verifier.verify({ ...good, headers }), { instanceOf: AuthError }, title);
    t.is(err?.code, "EE-AUTH-SIGNATURE", title);
    t.regex(err?.message ?? "", message, title);
  }
});

test("no secret yet (before registration): every request is EE-AUTH-SIGNATURE", (t) => {
  let current: Uint8Array | null = null;
  const verifier = createRequestVerifier({ secret: () => current, now: () => T0 });
  refused(t, () => verifier.verify(signed()), "EE-AUTH-SIGNATURE", /no API secret/);
  current = new Uint8Array(0);
  refused(t, () => verifier.verify(signed()), "EE-AUTH-SIGNATURE", /no API secret/);
  // The secret is read per request: once issued, the same request verifies.
  current = secret;
  t.notThrows(() => verifier.verify(signed()));
});

test("a timestamp outside the skew window, either way: EE-AUTH-SKEW", (t) => {
  const verifier = verifierAt({ now: T0 });
  refused(t, () => verifier.verify(signed({}, T0 - 30_001)), "EE-AUTH-SKEW", /-?30001 ms/);
  refused(t, () => verifier.verify(signed({}, T0 + 30_001)), "EE-AUTH-SKEW", /30001 ms/);
  const tight = verifierAt({ now: T0 }, { skewMs: 1000 });
  refused(t, () => tight.verify(signed({}, T0 - 1001)), "EE-AUTH-SKEW");
  t.notThrows(() => tight.verify(signed({}, T0 - 1000)));
});

test("a request is accepted once: the same signature again is EE-AUTH-REPLAY while it is fresh", (t) => {
  const clock = { now: T0 };
  const verifier = verifierAt(clock);
  const req = signed();
  verifier.verify(req);
  refused(t, () => verifier.verify(req), "EE-AUTH-REPLAY");
  clock.now = T0 + 30_000;
  refused(t, () => verifier.verify(req), "EE-AUTH-REPLAY");
  // Past the window it is stale, whatever the replay memory holds.
  clock.now = T0 + 30_001;
  refused(t, () => verifier.verify(req), "EE-AUTH-SKEW");
  // A new timestamp is a new request.
  t.notThrows(() => verifier.verify(signed({}, T0 + 30_001)));
});

test("replays stay refused after more than 10,000 signed requests within the window", (t) => {
  const clock = { now: T0 };
  const verifier = verifierAt(clock);
  const first = signed();
  verifier.verify(first);
  // Distinct requests (different bodies), all well inside the skew window, fill the old count-bounded memory.
  const other = (text: string) => {
    const b = Buffer.from(text);
    return signed({ body: b, headers: signedHeaders(secret, "POST", "/api/deploy", b, T0) });
  };
  for (let i = 0; i < 9_999; i++) verifier.verify(other(String(i)));
  refused(t, () => verifier.verify(first), "EE-AUTH-REPLAY");
  // The 10,001st fresh request is refused rather than making room by forgetting one.
  refused(t, () => verifier.verify(other("one more")), "EE-AUTH-RATE", /10000/);
  refused(t, () => verifier.verify(first), "EE-AUTH-REPLAY");
});

test("the replay memory forgets by time: past the window old entries go and new requests are accepted", (t) => {
  const clock = { now: T0 };
  const verifier = verifierAt(clock, { replayCap: 2 });
  const [a, b] = [signed({}, T0), signed({}, T0 + 1)];
  verifier.verify(a);
  verifier.verify(b);
  // Full: a fresh request is refused, and neither remembered signature is forgotten for it.
  refused(t, () => verifier.verify(signed({}, T0 + 2)), "EE-AUTH-RATE");
  refused(t, () => verifier.verify(a), "EE-AUTH-REPLAY");
  refused(t, () => verifier.verify(b), "EE-AUTH-REPLAY");
  // While a is still within skew of the clock it is remembered, and the memory stays full.
  clock.now = T0 + 30_000;
  refused(t, () => verifier.verify(a), "EE-AUTH-REPLAY");
  refused(t, () => verifier.verify(signed({}, T0 + 30_000)), "EE-AUTH-RATE");
  // Once both are past the window (stale for the skew check anyway), they are dropped and room is free again.
  clock.now = T0 + 60_002;
  refused(t, () => verifier.verify(a), "EE-AUTH-SKEW");
  t.notThrows(() => verifier.verify(signed({}, T0 + 60_002)));
  t.notThrows(() => verifier.verify(signed({}, T0 + 60_001)));
});

test("refused requests take no place in the replay memory", (t) => {
  const clock = { now: T0 };
  const verifier = verifierAt(clock, { replayCap: 1 });
  const kept = signed();
  verifier.verify(kept);
  // Forged and stale requests must not evict the one remembered signature.
  for (let i = 0; i < 5; i++) {
    t.throws(() => verifier.verify(signed({}, T0 + i, otherSecret)));
    t.throws(() => verifier.verify(signed({}, T0 - 60_000 - i)));
  }
  refused(t, () => verifier.verify(kept), "EE-AUTH-REPLAY");
});

test("precheck refuses what needs no body (headers, skew, no secret) and takes no place in the replay memory", (t) => {
  let current: Uint8Array | null = secret;
  const verifier = createRequestVerifier({ secret: () => current, now: () => T0, replayCap: 1 });
  const fresh = signed().headers;
  refused(t, () => verifier.precheck({}), "EE-AUTH-SIGNATURE", /headers/);
  refused(t, () => verifier.precheck({ ...fresh, [SIGNATURE_HEADER]: "AB" }), "EE-AUTH-SIGNATURE");
  refused(t, () => verifier.precheck({ ...fresh, [TIMESTAMP_HEADER]: "soon" }), "EE-AUTH-SIGNATURE");
  refused(t, () => verifier.precheck(signed({}, T0 - 30_001).headers), "EE-AUTH-SKEW");
  refused(t, () => verifier.precheck(signed({}, T0 + 30_001).headers), "EE-AUTH-SKEW");
  // Well formed and fresh passes, whoever signed it: only verify, with the body, knows.
  t.notThrows(() => verifier.precheck(signed({}, T0, otherSecret).headers));
  t.notThrows(() => verifier.precheck(fresh));
  t.notThrows(() => verifier.verify(signed()), "prechecks used none of the one replay slot");
  current = null;
  refused(t, () => verifier.precheck(fresh), "EE-AUTH-SIGNATURE", /no API secret/);
});
