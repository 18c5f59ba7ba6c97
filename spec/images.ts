// Image references of a deployment: how a compose `image:` splits into registry and digest, the `images` list an
// agent reports (service, the reference as written, the digest that runs), and the workload hash a running
// agent's quotes bind (compose hash plus every image digest). One function both sides use: the agent binds it,
// the CP recomputes it from the reported images. Pure: imports zod and node:crypto only.
import { createHash } from "node:crypto";
import { z } from "zod";

/** A content digest as the engine and registries give it. */
export const imageDigestSchema = z.string().regex(/^sha256:[0-9a-f]{64}$/, "must be sha256:<64 hex>");

/**
 * One service's image once resolved: `digest` is the registry manifest digest (RepoDigests) for an image from a
 * registry, or the local image id (the config digest) for one built from the deployment's context.
 */
export const imageRefSchema = z.object({
  service: z.string().min(1).max(64),
  ref: z.string().min(1).max(512),
  digest: imageDigestSchema,
});
export type ImageRef = z.infer<typeof imageRefSchema>;
export const imageRefsSchema = z.array(imageRefSchema).max(64);

/** The registry host Docker would pull `ref` from (`docker.io` for Docker Hub's short names). */
export function registryOf(ref: string): string {
  const slash = ref.indexOf("/");
  if (slash < 0) return "docker.io";
  const first = ref.slice(0, slash);
  // Docker's rule: the first component is a host only if it has a dot or a port, or is localhost.
  return /[.:]/.test(first) || first === "localhost" ? first : "docker.io";
}

/** The `@sha256:` digest a reference pins, or null for a tag-only reference. */
export function pinnedDigest(ref: string): string | null {
  const at = ref.lastIndexOf("@");
  return at < 0 ? null : ref.slice(at + 1);
}

/**
 * What a running agent's `deployed` quotes bind: SHA-256 over the compose hash and each service's image digest
 * (sorted by service), so a verifier knows which bytes run, not only which compose file. Hex.
 */
export function workloadHash(composeHash: string, images: readonly ImageRef[]): string {
  const h = createHash("sha256").update(`easyenclave/workload/v1\n${composeHash}\n`);
  const sorted = [...images].sort((a, b) => (a.service < b.service ? -1 : a.service > b.service ? 1 : 0));
  for (const i of sorted) h.update(`${i.service} ${i.digest}\n`);
  return h.digest("hex");
}

/** Registry credentials by host (`HOST[:PORT]`, as image references name it): `registry_auth` of a deploy. */
export const registryAuthSchema = z
  .record(
    z.string().regex(/^[a-zA-Z0-9.-]+(:[0-9]{1,5})?$/, "must be HOST[:PORT]"),
    z.strictObject({ username: z.string().min(1).max(256), password: z.string().min(1).max(4096) }),
  )
  .refine((m) => Object.keys(m).length <= 16, "at most 16 registries");
export type RegistryAuth = z.infer<typeof registryAuthSchema>;
