// `GET /api/health?attest=true&nonce=HEX` on a real agent with a dev quote provider: the quote verifies under
// the dev root and binds the caller's nonce and the agent key; bad nonces are refused; provider failures and
// floods answer 503 EE-ATT-PROVIDER without ever holding more quotes in flight than the limit.
import { randomBytes } from "node:crypto";
import test, { type ExecutionContext } from "ava";
import { startAgent } from "../../agent/agent.ts";
import type { AgentHealth } from "../../agent/health.ts";
import { createHttpApi, listenHttpApi } from "../../agent/http-api.ts";
import { loadOrCreateIdentity } from "../../agent/identity.ts";
import type { Workloads } from "../../agent/workload.ts";
import { agentIdFromPubkey } from "../../attestation/agent-key.ts";
import { loadDevRootPem } from "../../attestation/dev-pki.ts";
import type { QuoteProvider } from "../../attestation/providers/provider.ts";
import { reportDataFor } from "../../attestation/report-data.ts";
import { createTrustAnchors } from "../../attestation/trust.ts";
import { verifyQuote } from "../../attestation/verify.ts";
import { silentLogger } from "../../lib/log.ts";
import { AttestationError, type ErrorBody } from "../../spec/errors.ts";
import { agentConfig, devRoot } from "../helpers/cluster.ts";
import { agentContract, type ContractInit } from "../helpers/contract.ts";
import { closedPort } from "../helpers/temp.ts";

/** The health tests never reach the workload routes or the proxy. */
const unused = (): never => {
  throw new Error("not used by the health tests");
};
const noWorkloads: Workloads = {
  current: () => null,
  deploy: unused,
  undeploy: unused,
  subscribe: unused,
  logs: unused,
  stats: unused,
  proxyTarget: () => null,
  stop: async () => {},
};

/** A provider returning a fixed blob that counts how often it was asked (to prove no quote was taken). */
function countingProvider(): QuoteProvider & { quotes: number } {
  const provider = {
    name: "tsm", // stands in for the TD's quoting
    quotes: 0,
    getQuote: async () => {
      provider.quotes++;
      return new Uint8Array(64);
    },
  };
  return provider;
}

interface Started {
  apiUrl: string;
  agentId: string;
  pubkey: Uint8Array;
  devDir: string;
}

async function startDevAgent(t: ExecutionContext, quoteProvider?: QuoteProvider): Promise<Started> {
  const devDir = await devRoot();
  const config = agentConfig(t, `ws://127.0.0.1:${await closedPort()}`, devDir);
  const agent = await startAgent(
    config,
    quoteProvider ? { log: silentLogger, quoteProvider } : { log: silentLogger },
  );
  t.teardown(() => agent.stop());
  // The key exists now; loading it again reads the same identity the agent uses.
  const { publicKey } = await loadOrCreateIdentity(config.data_dir);
  return { apiUrl: agent.apiUrl, agentId: agent.agentId, pubkey: publicKey, devDir };
}

async function health(
  apiUrl: string,
  query: string,
  init: ContractInit = {},
): Promise<{ status: number; body: unknown; res: Response }> {
  const res = await agentContract.fetch(`${apiUrl}/api/health${query}`, init);
  return { status: res.status, body: await res.json(), res };
}

for (const nonceOf of [
  { title: "16-byte lowercase", make: () => randomBytes(16).toString("hex") },
  { title: "64-byte uppercase", make: () => randomBytes(64).toString("hex").toUpperCase() },
]) {
  test(`attest=true with a ${nonceOf.title} nonce: the quote verifies under the dev root and binds nonce and key`, async (t) => {
    const agent = await startDevAgent(t);
    t.is(agentIdFromPubkey(agent.pubkey), agent.agentId);
    const nonceHex = nonceOf.make();
    const { status, body, res } = await health(agent.apiUrl, `?attest=true&nonce=${nonceHex}`);
    t.is(status, 200, JSON.stringify(body));
    t.is(res.headers.get("cache-control"), "no-store");
    const h = body as AgentHealth;
    t.is(h.status, "ok");
    t.is(h.agent_id, agent.agentId);
    const att = h.attestation;
    if (!att) return t.fail("no attestation in the response");

    const nonce = Buffer.from(nonceHex, "hex");
    const expected = Buffer.from(reportDataFor("health", nonce, agent.pubkey));
    t.like(att, {
      provider: "dev",
      purpose: "health",
      nonce: nonceHex.toLowerCase(),
      agent_pubkey: Buffer.from(agent.pubkey).toString("hex"),
      report_data: expected.toString("hex"),
    });
    t.regex(att.agent_pubkey, /^[0-9a-f]{64}$/);
    t.regex(att.report_data, /^[0-9a-f]{128}$/);

    const quote = Buffer.from(att.quote, "base64");
    t.is(quote.toString("base64"), att.quote, "quote is canonical base64");
    const verified = verifyQuote(quote, {
      trust: createTrustAnchors({ devRootPem: loadDevRootPem(agent.devDir) }),
    });
    t.is(verified.root, "dev");
    t.true(Buffer.from(verified.reportData).equals(expected));
    t.is(verified.report_data, expected.toString("hex"));
  });
}

test("two attested health calls with different nonces give different bindings", async (t) => {
  const agent = await startDevAgent(t);
  const a = (await health(agent.apiUrl, `?attest=true&nonce=${"aa".repeat(32)}`)).body as AgentHealth;
  const b = (await health(agent.apiUrl, `?attest=true&nonce=${"bb".repeat(32)}`)).body as AgentHealth;
  t.truthy(a.attestation && b.attestation);
  t.not(a.attestation?.report_data, b.attestation?.report_data);
});

test("without attest=true the response carries no attestation", async (t) => {
  const counting = countingProvider();
  const agent = await startDevAgent(t, counting);
  for (const query of ["", "?attest=false", `?attest=false&nonce=${"ab".repeat(16)}`, "?nonce=zz"]) {
    // A bad nonce without attest is ignored: off the document on purpose.
    const { status, body } = await health(agent.apiUrl, query, { badRequest: query === "?nonce=zz" });
    t.is(status, 200, query);
    t.is((body as AgentHealth).status, "ok", query);
    t.false("attestation" in (body as object), query);
  }
  t.is(counting.quotes, 0, "no quote was requested");
});

const badQueries: [string, string, RegExp][] = [
  ["missing nonce", "?attest=true", /nonce/],
  ["empty nonce", "?attest=true&nonce=", /nonce/],
  ["odd-length nonce", `?attest=true&nonce=${"ab".repeat(16)}a`, /nonce.*hex/],
  ["non-hex nonce", `?attest=true&nonce=${"zz".repeat(16)}`, /nonce.*hex/],
  ["0x-prefixed nonce", `?attest=true&nonce=0x${"ab".repeat(16)}`, /nonce.*hex/],
  ["too short nonce (15 bytes)", `?attest=true&nonce=${"ab".repeat(15)}`, /nonce.*16 to 64 bytes, got 15/],
  ["too long nonce (65 bytes)", `?attest=true&nonce=${"ab".repeat(65)}`, /nonce.*16 to 64 bytes, got 65/],
  ["repeated nonce", `?attest=true&nonce=${"ab".repeat(16)}&nonce=${"cd".repeat(16)}`, /nonce/],
  ["attest not a boolean", `?attest=yes&nonce=${"ab".repeat(16)}`, /attest/],
];

test("bad attest or nonce parameters: 400 EE-REQ-INVALID naming the parameter, and no quote taken", async (t) => {
  const counting = countingProvider();
  const agent = await startDevAgent(t, counting);
  for (const [title, query, message] of badQueries) {
    const { status, body } = await health(agent.apiUrl, query, { badRequest: true });
    t.is(status, 400, title);
    const err = (body as ErrorBody).error;
    t.is(err.code, "EE-REQ-INVALID", title);
    t.regex(err.message, message, title);
  }
  t.is(counting.quotes, 0);
});

test("a failing quote provider: 503 EE-ATT-PROVIDER with Retry-After, and its internals stay in the log", async (t) => {
  const failing: QuoteProvider = {
    name: "tsm",
    getQuote: async () => {
      throw new AttestationError("EE-ATT-PROVIDER", "tsm: write /sys/kernel/config/tsm/report/x/inblob: EIO");
    },
  };
  const agent = await startDevAgent(t, failing);
  const { status, body, res } = await health(agent.apiUrl, `?attest=true&nonce=${"ab".repeat(32)}`);
  t.is(status, 503);
  t.is(res.headers.get("retry-after"), "1");
  const err = (body as ErrorBody).error;
  t.is(err.code, "EE-ATT-PROVIDER");
  t.notRegex(err.message, /\/sys\//);

  // A provider throwing something untyped is the same unavailability, not an EE-INTERNAL.
  const untyped: QuoteProvider = {
    name: "tsm",
    getQuote: async () => {
      throw new Error("boom");
    },
  };
  const other = await startDevAgent(t, untyped);
  const second = await health(other.apiUrl, `?attest=true&nonce=${"ab".repeat(32)}`);
  t.is(second.status, 503);
  t.is((second.body as ErrorBody).error.code, "EE-ATT-PROVIDER");
});

test("quotes are bounded: at most inFlight run at once, a short queue waits, the rest are refused with 503", async (t) => {
  let active = 0;
  let peak = 0;
  let calls = 0;
  const releases: (() => void)[] = [];
  const slow: QuoteProvider = {
    name: "tsm", // stands in for the TD's quoting
    getQuote: async () => {
      calls++;
      active++;
      peak = Math.max(peak, active);
      await new Promise<void>((resolve) => releases.push(resolve));
      active--;
      return new Uint8Array(8);
    },
  };
  const app = createHttpApi({
    health: (): AgentHealth => ({
      status: "ok",
      agent_id: "agt_000000000000000000000000",
      vm_name: "vm-1",
      node_size: "tiny",
      datacenter: "baremetal:local",
      connection: "connecting",
      registered: false,
      attestation_provider: "tsm",
      version: "0.1.0",
      uptime_s: 0,
    }),
    // Writes are not exercised here: nothing reaches this check.
    envelope: { check: () => ({ checked: "none", cp_pubkey: null, mrtd: null }) },
    agentPubkey: new Uint8Array(32),
    quoteProvider: slow,
    log: silentLogger,
    quoteLimits: { inFlight: 2, waiting: 1 },
    workloads: noWorkloads,
    apiSecret: () => null,
    snapshot: () => ({}),
  });
  const server = await listenHttpApi(app, { host: "127.0.0.1", port: 0 });
  t.teardown(() => server.close());
  const query = `?attest=true&nonce=${"ab".repeat(16)}`;

  const pending = [0, 1, 2].map(() => health(server.url, query));
  // Two run, one waits; wait until both running quotes are with the provider.
  while (releases.length < 2) await new Promise((r) => setTimeout(r, 5));
  const refused = await health(server.url, query);
  t.is(refused.status, 503);
  t.is((refused.body as ErrorBody).error.code, "EE-ATT-PROVIDER");
  t.regex((refused.body as ErrorBody).error.message, /busy/);

  // Release quotes one by one until every pending request has had its turn.
  let released = 0;
  while (released < 3) {
    const next = releases[released];
    if (next) {
      next();
      released++;
    } else await new Promise((r) => setTimeout(r, 5));
  }
  const results = await Promise.all(pending);
  t.deepEqual(
    results.map((r) => r.status),
    [200, 200, 200],
  );
  t.is(calls, 3);
  t.is(peak, 2);
  const first = results[0]?.body as AgentHealth | undefined;
  t.is(first?.attestation?.quote, Buffer.alloc(8).toString("base64"));

  // The slots are all free again.
  const after = health(server.url, query);
  while (releases.length < 4) await new Promise((r) => setTimeout(r, 5));
  releases[3]?.();
  t.is((await after).status, 200);
});
