// Secret values at rest in the CP's SQLite store: compose texts (their `environment` values and anything else
// inline, such as passwords in commands, are the workload's secrets) are sealed with AES-256-GCM under the store
// key (DATA_DIR/store.key, actors/bootstrap-secret.ts) before they reach the database file, its WAL or a backup.
// Each sealed value is bound to the row it belongs to (`context`, GCM additional data), so a value copied into
// another row does not open. Imports node:crypto and spec/errors only.
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { ValidationError } from "../../spec/errors.ts";

/** Marks a sealed value; anything without it is a row written before sealing existed, read as it is. */
const PREFIX = "ee-sealed:v1:";
const IV_BYTES = 12;
const TAG_BYTES = 16;

export class TextSealer {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== 32) throw new RangeError("the store key is 32 bytes");
    this.#key = key;
  }

  /** `text` sealed for the row named by `context`; the empty text (no compose known) stays empty. */
  seal(text: string, context: string): string {
    if (text === "") return "";
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.#key, iv);
    cipher.setAAD(Buffer.from(context));
    const body = Buffer.concat([cipher.update(text, "utf8"), cipher.final()]);
    return `${PREFIX}${Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64")}`;
  }

  /** The text `seal` was given for `context`; EE-CONFIG-INVALID when the key or the row does not match. */
  open(stored: string, context: string): string {
    if (!stored.startsWith(PREFIX)) return stored;
    const raw = Buffer.from(stored.slice(PREFIX.length), "base64");
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.#key, raw.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(context));
      decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString(
        "utf8",
      );
    } catch {
      throw new ValidationError(
        "EE-CONFIG-INVALID",
        `the sealed value of ${context} does not open with this data dir's store.key (another key file, or a damaged row)`,
      );
    }
  }
}
