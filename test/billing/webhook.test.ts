// The payment webhook's signature: HMAC-SHA256 of the exact body under the secret, any other header refused with
// one code; the secret file is read trimmed and refused when unreadable or shorter than 16 bytes.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { loadWebhookSecret, signWebhook, verifyWebhook } from "../../billing/webhook.ts";
import { tempDir } from "../helpers/temp.ts";

const SECRET = Buffer.from("whsec-0123456789abcdef");
const BODY = Buffer.from('{"account_id":"acme","amount_micros":1,"idempotency_key":"p1"}');

test("only the body's HMAC under the secret verifies", (t) => {
  t.notThrows(() => verifyWebhook(SECRET, BODY, signWebhook(SECRET, BODY)));
  t.notThrows(() =>
    verifyWebhook(SECRET, BODY, signWebhook(SECRET, BODY).toUpperCase().replace("SHA256", "sha256")),
  );
  const refused = [
    [SECRET, Buffer.from(`${BODY} `), signWebhook(SECRET, BODY)],
    [Buffer.from("another-secret-01234"), BODY, signWebhook(SECRET, BODY)],
    [SECRET, BODY, undefined],
    [SECRET, BODY, signWebhook(SECRET, BODY).slice(7)],
    [SECRET, BODY, `${signWebhook(SECRET, BODY)}00`],
    [SECRET, BODY, "sha256=zz"],
    [null, BODY, signWebhook(SECRET, BODY)],
  ] as const;
  for (const [secret, body, header] of refused)
    t.is(
      (t.throws(() => verifyWebhook(secret, body, header)) as { code?: string }).code,
      "EE-AUTH-WEBHOOK-SIGNATURE",
    );
});

test("the secret file is trimmed, and a short or missing one is EE-CONFIG-INVALID", (t) => {
  const dir = tempDir(t);
  const file = join(dir, "secret");
  writeFileSync(file, `${SECRET}\n`, { mode: 0o600 });
  t.deepEqual(loadWebhookSecret(file), SECRET);
  writeFileSync(file, "short\n");
  t.is((t.throws(() => loadWebhookSecret(file)) as { code?: string }).code, "EE-CONFIG-INVALID");
  t.is((t.throws(() => loadWebhookSecret(join(dir, "none"))) as { code?: string }).code, "EE-CONFIG-INVALID");
});
