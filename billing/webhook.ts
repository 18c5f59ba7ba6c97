// The signed payment webhook: a payment provider proves a deposit with HMAC-SHA256 over the raw request body,
// keyed by a shared secret read from a file (`--billing-webhook-secret-file`, never logged). The signature is
// compared in constant time; a missing secret refuses every request. Imports node: and spec/errors only.
import { createHmac, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { AuthError, ValidationError } from "../spec/errors.ts";

/** The header carrying `sha256=<hex>` of the body. */
export const WEBHOOK_SIGNATURE_HEADER = "x-ee-signature";

/** The HMAC of `body` as the header value a payment provider sends. */
export function signWebhook(secret: Buffer, body: Buffer | string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/** Throws EE-AUTH-WEBHOOK-SIGNATURE unless `header` is the body's HMAC under `secret`. */
export function verifyWebhook(secret: Buffer | null, body: Buffer, header: string | undefined): void {
  const refuse = () => new AuthError("EE-AUTH-WEBHOOK-SIGNATURE");
  if (secret === null || header === undefined) throw refuse();
  const m = /^sha256=([0-9a-f]{64})$/i.exec(header.trim());
  if (!m) throw refuse();
  const expected = createHmac("sha256", secret).update(body).digest();
  if (!timingSafeEqual(Buffer.from(m[1]!, "hex"), expected)) throw refuse();
}

/** Reads the webhook secret (surrounding whitespace trimmed); at least 16 bytes, or EE-CONFIG-INVALID. */
export function loadWebhookSecret(file: string): Buffer {
  let text: string;
  try {
    text = readFileSync(file, "utf8").trim();
  } catch {
    throw new ValidationError("EE-CONFIG-INVALID", `cannot read the billing webhook secret file ${file}`);
  }
  if (Buffer.byteLength(text) < 16)
    throw new ValidationError(
      "EE-CONFIG-INVALID",
      `the billing webhook secret in ${file} is shorter than 16 bytes`,
    );
  return Buffer.from(text, "utf8");
}
