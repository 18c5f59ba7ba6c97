// Loads the measurement policy file given with `--policy FILE` (bootstrap state: a file, never only the DB).
// Every problem is EE-CONFIG-INVALID naming the file and the key.
import { readFileSync } from "node:fs";
import { type MeasurementPolicy, policySchema } from "../attestation/policy.ts";
import { ValidationError } from "../spec/errors.ts";

export function loadPolicyFile(path: string): MeasurementPolicy {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    const why = err instanceof SyntaxError ? "is not valid JSON" : "cannot be read";
    throw new ValidationError("EE-CONFIG-INVALID", `policy file ${path} ${why}`);
  }
  const parsed = policySchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "<root>"}: ${i.message}`);
    throw new ValidationError("EE-CONFIG-INVALID", `policy file ${path}: ${issues.join("; ")}`, { issues });
  }
  return parsed.data;
}
