// Functions over a deployment's image references: the registry a compose `image:` is pulled from, the digest it
// pins, and the workload hash a running agent's quotes bind (compose hash plus every image digest). One function
// both sides use: the agent binds it, the CP recomputes it from the reported images. The schemas are
// spec/images.ts. Pure: imports node:crypto and spec/images (types) only.
import { createHash } from "node:crypto";
import type { ImageRef } from "../spec/images.ts";

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
