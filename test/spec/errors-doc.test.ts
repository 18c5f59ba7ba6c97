// spec/ must match the code: every error code and every protocol message type is documented.
import { readFileSync } from "node:fs";
import test from "ava";
import { ERROR_CODES } from "../../spec/errors.ts";
import { messageSchemas } from "../../spec/protocol.ts";

const read = (f: string) => readFileSync(new URL(`../../spec/${f}`, import.meta.url), "utf8");

test("every error code is listed in spec/errors.md", (t) => {
  const doc = read("errors.md");
  const missing = Object.keys(ERROR_CODES).filter((c) => !doc.includes(`\`${c}\``));
  t.deepEqual(missing, []);
});

test("every message type is described in spec/protocol.md", (t) => {
  const doc = read("protocol.md");
  const missing = Object.keys(messageSchemas).filter((m) => !doc.includes(`### \`${m}\``));
  t.deepEqual(missing, []);
});
