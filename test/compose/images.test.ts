import test from "ava";
import { pinnedDigest, registryOf, workloadHash } from "../../compose/images.ts";

const D1 = `sha256:${"11".repeat(32)}`;
const D2 = `sha256:${"22".repeat(32)}`;
const COMPOSE = "ab".repeat(32);

test("the workload hash covers every image digest, not only the compose hash", (t) => {
  const one = workloadHash(COMPOSE, [{ service: "web", ref: "app:1", digest: D1 }]);
  t.regex(one, /^[0-9a-f]{64}$/);
  t.not(one, workloadHash(COMPOSE, [{ service: "web", ref: "app:1", digest: D2 }]), "another digest");
  t.not(
    one,
    workloadHash("cd".repeat(32), [{ service: "web", ref: "app:1", digest: D1 }]),
    "another compose",
  );
  t.not(one, workloadHash(COMPOSE, []), "no images");
});

test("the workload hash does not depend on the order images are listed in", (t) => {
  const a = { service: "a", ref: "a:1", digest: D1 };
  const b = { service: "b", ref: "b:1", digest: D2 };
  t.is(workloadHash(COMPOSE, [a, b]), workloadHash(COMPOSE, [b, a]));
});

test("registry hosts and pinned digests are read from references as Docker reads them", (t) => {
  t.is(registryOf("nginx:1.27"), "docker.io");
  t.is(registryOf("org/app:1"), "docker.io");
  t.is(registryOf("ghcr.io/org/app@sha256:x"), "ghcr.io");
  t.is(registryOf("127.0.0.1:5000/app:1"), "127.0.0.1:5000");
  t.is(registryOf("localhost/app"), "localhost");
  t.is(pinnedDigest(`ghcr.io/org/app@${D1}`), D1);
  t.is(pinnedDigest("127.0.0.1:5000/app:1"), null);
});
