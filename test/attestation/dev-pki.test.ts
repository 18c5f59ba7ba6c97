// dev-init and its files: what is written, with which modes, refusing to overwrite, and loading it back.
import { createHash, X509Certificate } from "node:crypto";
import { chmodSync, cpSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { DEV_PKI_FILES, devInit, loadDevPki, loadDevRootPem } from "../../attestation/dev-pki.ts";
import { ValidationError } from "../../spec/errors.ts";
import { tempDir } from "./fixtures.ts";

const mode = (path: string) => statSync(path).mode & 0o777;

test("writes root, PCK CA, PCK leaf and keys; keys 0600, a new directory 0700", async (t) => {
  const dir = join(tempDir(t), "a", "dev");
  const result = await devInit(dir);
  t.is(mode(dir), 0o700);
  t.deepEqual(result.files.map((f) => f.slice(dir.length + 1)).sort(), Object.values(DEV_PKI_FILES).sort());
  t.is(mode(join(dir, DEV_PKI_FILES.leafKey)), 0o600);
  t.is(mode(join(dir, DEV_PKI_FILES.attestationKey)), 0o600);

  const cert = (name: string) => new X509Certificate(readFileSync(join(dir, name)));
  const [root, ca, leaf] = [DEV_PKI_FILES.rootCert, DEV_PKI_FILES.caCert, DEV_PKI_FILES.leafCert].map(cert);
  if (!root || !ca || !leaf) throw new Error("three certificates expected");
  t.true(root.ca && root.checkIssued(root) && root.verify(root.publicKey));
  t.true(ca.ca && ca.checkIssued(root) && ca.verify(root.publicKey));
  t.true(!leaf.ca && leaf.checkIssued(ca) && leaf.verify(ca.publicKey));
  for (const c of [root, ca, leaf]) t.regex(c.subject, /DEVELOPMENT.*NOT FOR PRODUCTION/);
  t.true(Date.parse(leaf.validTo) < Date.parse(ca.validTo));
  t.is(result.rootFingerprint, createHash("sha256").update(root.raw).digest("hex"));
});

test("refuses to replace an existing root unless forced", async (t) => {
  const dir = tempDir(t);
  const first = await devInit(dir);
  const err = await t.throwsAsync(devInit(dir), { instanceOf: ValidationError });
  t.is(err?.code, "EE-CONFIG-INVALID");
  t.is(
    createHash("sha256")
      .update(new X509Certificate(loadDevRootPem(dir)).raw)
      .digest("hex"),
    first.rootFingerprint,
  );

  chmodSync(join(dir, DEV_PKI_FILES.attestationKey), 0o644);
  const second = await devInit(dir, { force: true });
  t.not(second.rootFingerprint, first.rootFingerprint);
  t.is(mode(join(dir, DEV_PKI_FILES.attestationKey)), 0o600);
});

test("loadDevPki returns the signing keys and the leaf, CA, root chain", async (t) => {
  const dir = tempDir(t);
  await devInit(dir);
  const pki = loadDevPki(dir);
  t.is(pki.attestationKey.type, "private");
  t.is(pki.pckLeafKey.type, "private");
  const read = (name: string) => readFileSync(join(dir, name), "utf8");
  t.is(
    pki.chainPem,
    read(DEV_PKI_FILES.leafCert) + read(DEV_PKI_FILES.caCert) + read(DEV_PKI_FILES.rootCert),
  );
});

test("loadDevPki refuses a leaf key that does not match the leaf, and missing files", async (t) => {
  const a = tempDir(t);
  const b = tempDir(t);
  await devInit(a);
  await devInit(b);
  cpSync(join(b, DEV_PKI_FILES.leafKey), join(a, DEV_PKI_FILES.leafKey));
  t.like(
    t.throws(() => loadDevPki(a)),
    { code: "EE-CONFIG-INVALID" },
  );
  t.like(
    t.throws(() => loadDevPki(tempDir(t))),
    { code: "EE-CONFIG-INVALID" },
  );
  t.like(
    t.throws(() => loadDevRootPem(tempDir(t))),
    { code: "EE-CONFIG-INVALID" },
  );
});
