// The leaf link with mutual TLS as `eectl nats config --auth tls` writes it: the hub maps a leaf's certificate to
// its user by the SAN `<dc>.leaf.ee` (verify_and_map) and a dc CP syncs through it; a certificate from another CA,
// or from the right CA for a dc the hub does not know, is refused. Certificates from test/helpers/tls.ts.
import test, { type ExecutionContext } from "ava";
import { startTestCp, waitFor } from "../helpers/cluster.ts";
import { startNatsFederation, type TlsFiles } from "../helpers/nats.ts";
import { makeCa, makeServerCert, type TestCa } from "../helpers/tls.ts";

/** A P-256 CA, and certificates for mutual TLS it (or `issuer`) signs with the SAN given. */
async function pki(t: ExecutionContext) {
  const ca = await makeCa(t, "ca");
  let serial = 1;
  const cert = async (san: string, issuer: TestCa = ca): Promise<TlsFiles> => {
    const c = await makeServerCert(issuer, serial++, undefined, { san, clientAuth: true });
    return { cert: c.certFile, key: c.keyFile, ca: ca.certFile };
  };
  return { cert, otherCa: (name: string) => makeCa(t, name), hub: await cert("IP:127.0.0.1") };
}

test("a leaf whose certificate carries SAN dc1.leaf.ee links as dc1 and its CP syncs to the master", async (t) => {
  const p = await pki(t);
  const nats = await startNatsFederation(t, ["dc1"], {
    auth: "tls",
    tls: { hub: p.hub, dc1: await p.cert("DNS:dc1.leaf.ee") },
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
      const dc1 = r.body.datacenters.find((d) => d.dc_id === "dc1");
      return dc1?.status === "healthy" ? r.body.datacenters : undefined;
    },
    30_000,
  );
  t.deepEqual(
    dcs.map((d) => d.dc_id),
    ["dc1", "master"],
  );
});

type Pki = Awaited<ReturnType<typeof pki>>;

for (const [what, make, refusal] of [
  [
    "a certificate from another CA",
    async (p: Pki) => p.cert("DNS:dc1.leaf.ee", await p.otherCa("evil")),
    /TLS leafnode handshake error/,
  ],
  [
    "a certificate for a dc the hub does not know",
    (p: Pki) => p.cert("DNS:dc9.leaf.ee"),
    /authentication error/,
  ],
] as const) {
  test(`the hub refuses a leaf with ${what}`, async (t) => {
    const p = await pki(t);
    const nats = await startNatsFederation(t, ["dc1"], {
      auth: "tls",
      tls: { hub: p.hub, dc1: await make(p) },
      waitLinked: false,
    });
    await waitFor("the hub's refusal", () => refusal.test(nats.hub.log()) || undefined, 30_000);
    const leafz = (await (await fetch(`${nats.leaves.get("dc1")!.monitorUrl}/leafz`)).json()) as {
      leafnodes: number;
    };
    t.is(leafz.leafnodes, 0);
  });
}
