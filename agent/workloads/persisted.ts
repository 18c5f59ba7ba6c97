// workload.json: the serving deployment's request (without its build context and registry credentials) and its
// last status, written atomically on every step so a restarted agent can restore it (agent/workloads/restore.ts).
// May import spec/, lib/ and zod.
import { join } from "node:path";
import { z } from "zod";
import { readFileIfExists } from "../../lib/read-if-exists.ts";
import { writeFileAtomicSync } from "../../lib/write-file-atomic.ts";
import { ValidationError } from "../../spec/errors.ts";
import { imageRefsSchema } from "../../spec/images.ts";
import {
  deployOriginSchema,
  healthSpecSchema,
  messageSchemas,
  workloadStepSchema,
} from "../../spec/protocol.ts";

export const PERSIST_FILE = "workload.json";

const persistedSchema = z.object({
  request: messageSchemas.deploy
    .omit({ context: true, registry_auth: true })
    .extend({ origin: deployOriginSchema.optional() }),
  status: z.object({
    deployment_id: z.string(),
    app: z.string(),
    step: workloadStepSchema,
    compose_hash: z.string(),
    // Records written before images were resolved to digests hold an object (service → image id): none known.
    images: z.preprocess((v) => (Array.isArray(v) ? v : []), imageRefsSchema),
    code: z.string().optional(),
    message: z.string().optional(),
    since: z.number(),
    health: healthSpecSchema.nullable(),
  }),
});

/** What workload.json holds: the deploy request without its build context, and the last status. */
export type PersistedWorkload = z.infer<typeof persistedSchema>;

/** The deployment persisted in dataDir, or null when there is none. Throws ValidationError when it is corrupt. */
export function loadPersistedWorkload(dataDir: string): PersistedWorkload | null {
  const path = join(dataDir, PERSIST_FILE);
  const text = readFileIfExists(path);
  if (text === null) return null;
  let parsed: ReturnType<typeof persistedSchema.safeParse>;
  try {
    parsed = persistedSchema.safeParse(JSON.parse(text));
  } catch {
    throw new ValidationError("EE-CONFIG-INVALID", `${path} is not JSON`);
  }
  if (!parsed.success) throw new ValidationError("EE-CONFIG-INVALID", `${path} is not a persisted workload`);
  return parsed.data;
}

// Atomic: a crash leaves either the old file or the new one, never half of one.
export function persistWorkload(dataDir: string, record: PersistedWorkload): void {
  writeFileAtomicSync(join(dataDir, PERSIST_FILE), JSON.stringify(record), 0o600);
}
