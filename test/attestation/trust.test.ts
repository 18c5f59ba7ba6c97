// Trust anchors: Intel always, the dev root only when given and only if it is a self-signed CA; matching is by
// exact bytes.
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { loadDevRootPem } from "../../attestation/dev-pki.ts";
import { createTrustAnchors, INTEL_SGX_ROOT_CA_PEM, trustOnly } from "../../attestation/trust.ts";
import { devSetup } from "./fixtures.ts";

const INTEL_FINGERPRINT = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3";

test("the Intel root is always an anchor; the dev root only when given", async (t) => {
  t.deepEqual(
    createTrustAnchors().anchors.map((a) => [a.label, a.fingerprint]),
    [["intel", INTEL_FINGERPRINT]],
  );
  const dev = await devSetup(t);
  t.deepEqual(
    createTrustAnchors({ devRootPem: loadDevRootPem(dev.dir) }).anchors.map((a) => a.label),
    ["intel", "dev"],
  );
});

test("match is by exact DER bytes", (t) => {
  const trust = createTrustAnchors();
  const intel = trust.anchors[0];
  if (intel === undefined) throw new Error("no Intel anchor");
  t.is(trust.match(intel.der)?.label, "intel");
  const altered = intel.der.slice();
  altered[altered.length - 1] = (altered[altered.length - 1] ?? 0) ^ 1;
  t.is(trust.match(altered), undefined);
});

test("a dev root that is not one self-signed CA certificate is a config error", async (t) => {
  const dev = await devSetup(t);
  const read = (name: string) => readFileSync(join(dev.dir, name), "utf8");
  const root = read("root-ca.pem");
  for (const [what, pem] of [
    ["garbage", "not a certificate"],
    ["two certificates", root + root],
    ["the PCK CA (not self-signed)", read("pck-ca.pem")],
    ["the PCK leaf (not a CA)", read("pck-leaf.pem")],
  ] as const) {
    t.like(
      t.throws(() => createTrustAnchors({ devRootPem: pem }), undefined, what),
      { code: "EE-CONFIG-INVALID" },
    );
  }
  t.true(new X509Certificate(root).ca);
});

test("trustOnly holds just the given root, labelled intel only when it is the Intel root", async (t) => {
  const devPem = loadDevRootPem((await devSetup(t)).dir);
  const dev = trustOnly(devPem);
  t.deepEqual(
    dev.anchors.map((a) => a.label),
    ["dev"],
  );
  t.is(trustOnly(INTEL_SGX_ROOT_CA_PEM).anchors[0]?.label, "intel");
  t.is(dev.match(createTrustAnchors().anchors[0]!.der), undefined, "the Intel root is not trusted alongside");
  t.throws(() => trustOnly("not a pem"), { instanceOf: Error });
});
