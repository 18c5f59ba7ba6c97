// The leaf link with mutual TLS as `eectl nats config --auth tls` writes it: the hub maps a leaf's certificate to
// its user by the SAN `<dc>.leaf.ee` (verify_and_map) and a dc CP syncs through it; a certificate from another CA,
// or from the right CA for a dc the hub does not know, is refused. Certificates made here with openssl.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { startTestCp, tempDir, waitFor } from "../helpers/cluster.ts";
import { startNatsFederation, type TlsFiles } from "../helpers/nats.ts";

/** A P-256 CA, and certificates it (or `issuer`) signs with the SAN given. */
function pki(t: ExecutionContext) {
  const dir = tempDir(t, "ee-pki-");
  const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  const ca = (name: string) =>
    openssl(
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.pem`,
      "-subj",
      `/CN=${name}`,
      "-days",
      "1",
    );
  const cert = (name: string, san: string, issuer = "ca"): TlsFiles => {
    openssl(
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      `/CN=${name}`,
    );
    writeFileSync(
      join(dir, `${name}.ext`),
      `subjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\n`,
    );
    openssl(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      `${issuer}.pem`,
      "-CAkey",
      `${issuer}.key`,
      "-CAcreateserial",
      "-out",
      `${name}.pem`,
      "-days",
      "1",
      "-extfile",
      `${name}.ext`,
    );
    return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`), ca: join(dir, "ca.pem") };
  };
  ca("ca");
  return { ca, cert, hub: cert("hub", "IP:127.0.0.1") };
}

test("a leaf whose certificate carries SAN dc1.leaf.ee links as dc1 and its CP syncs to the master", async (t) => {
  const p = pki(t);
  const nats = await startNatsFederation(t, ["dc1"], {
    auth: "tls",
    tls: { hub: p.hub, dc1: p.cert("dc1", "DNS:dc1.leaf.ee") },
  });
  const master = await startTestCp(t, {
    federation: { role: "master", nats: { url: nats.hub.url, credsFile: nats.hub.credsFile! } },
  });
  const leaf = nats.leaves.get("dc1")!;
  await startTestCp(t, {
    federation: { role: "dc", dcId: "dc1", nats: { url: leaf.url, credsFile: leaf.credsFile! } },
  });
  const dcs = await waitFor(
    "dc1 healthy on the master",
    async () => {
      const r = await master.api<{ datacenters: { dc_id: string; status: string }[] }>("/api/v2/datacenters");
      return r.body.datacenters[0]?.status === "healthy" ? r.body.datacenters : undefined;
    },
    30_000,
  );
  t.deepEqual(
    dcs.map((d) => d.dc_id),
    ["dc1"],
  );
});

for (const [what, make, refusal] of [
  [
    "a certificate from another CA",
    (p: ReturnType<typeof pki>) => {
      p.ca("evil");
      return p.cert("evil-dc1", "DNS:dc1.leaf.ee", "evil");
    },
    /TLS leafnode handshake error/,
  ],
  [
    "a certificate for a dc the hub does not know",
    (p: ReturnType<typeof pki>) => p.cert("dc9", "DNS:dc9.leaf.ee"),
    /authentication error/,
  ],
] as const) {
  test(`the hub refuses a leaf with ${what}`, async (t) => {
    const p = pki(t);
    const nats = await startNatsFederation(t, ["dc1"], {
      auth: "tls",
      tls: { hub: p.hub, dc1: make(p) },
      waitLinked: false,
    });
    await waitFor("the hub's refusal", () => refusal.test(nats.hub.log()) || undefined, 30_000);
    const leafz = (await (await fetch(`${nats.leaves.get("dc1")!.monitorUrl}/leafz`)).json()) as {
      leafnodes: number;
    };
    t.is(leafz.leafnodes, 0);
  });
}
