// Image references of a deployment, as schemas: the digest form, the `images` list an agent reports (service, the
// reference as written, the digest that runs) and the `registry_auth` shape of a deploy. The functions over them
// (registry host, pinned digest, workload hash) are compose/images.ts. Pure: imports zod only.
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

/** Registry credentials by host (`HOST[:PORT]`, as image references name it): `registry_auth` of a deploy. */
export const registryAuthSchema = z
  .record(
    z.string().regex(/^[a-zA-Z0-9.-]+(:[0-9]{1,5})?$/, "must be HOST[:PORT]"),
    z.strictObject({ username: z.string().min(1).max(256), password: z.string().min(1).max(4096) }),
  )
  .refine((m) => Object.keys(m).length <= 16, "at most 16 registries");
export type RegistryAuth = z.infer<typeof registryAuthSchema>;
