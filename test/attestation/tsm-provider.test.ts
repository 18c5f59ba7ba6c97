// The ConfigFS-TSM provider over the directory-backed stand-in: the shared provider contract, plus the
// protocol's own failure modes (interference, missing root, timeouts) and cleanup of report entries.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { createTsmQuoteProvider, type TsmQuoteProviderOptions } from "../../attestation/providers/tsm.ts";
import { verifyQuote } from "../../attestation/verify.ts";
import { AttestationError } from "../../spec/errors.ts";
import { devSetup, tempDir } from "./fixtures.ts";
import { providerContract } from "./provider-contract.ts";
import { createTsmStandIn } from "./tsm-standin.ts";

async function setup(t: ExecutionContext, opts: Omit<TsmQuoteProviderOptions, "fs" | "root"> = {}) {
  const dev = await devSetup(t);
  const root = join(tempDir(t, "ee-tsm-"), "report");
  mkdirSync(root);
  const standIn = createTsmStandIn(root, dev.dir);
  const provider = createTsmQuoteProvider({ ...opts, root, fs: standIn.fs });
  return { dev, root, standIn, provider };
}

const reportData = (seed: number) => Uint8Array.from({ length: 64 }, (_, i) => (seed + i) & 0xff);

providerContract("tsm", async (t) => {
  const { dev, provider } = await setup(t);
  return { provider, verify: (quote) => verifyQuote(quote, { trust: dev.trust }) };
});

test("names itself tsm", async (t) => {
  const { provider } = await setup(t);
  t.is(provider.name, "tsm");
});

test("the report entry is removed after a quote", async (t) => {
  const { provider, standIn } = await setup(t);
  await provider.getQuote(reportData(7));
  t.deepEqual(await standIn.entries(), []);
});

test("another writer bumping generation is detected with EE-ATT-PROVIDER, and the entry is removed", async (t) => {
  const { provider, standIn } = await setup(t);
  standIn.interfere();
  const err = await t.throwsAsync(provider.getQuote(reportData(8)), { instanceOf: AttestationError });
  t.is(err?.code, "EE-ATT-PROVIDER");
  t.regex(err?.message ?? "", /generation went from 0 to 2/);
  t.deepEqual(await standIn.entries(), []);
  // The failure does not wedge the provider.
  t.true((await provider.getQuote(reportData(9))).length > 0);
});

test("a missing root is EE-ATT-PROVIDER naming the path", async (t) => {
  const dev = await devSetup(t);
  const root = join(tempDir(t, "ee-tsm-"), "no-such-report");
  const provider = createTsmQuoteProvider({ root, fs: createTsmStandIn(root, dev.dir).fs });
  const err = await t.throwsAsync(provider.getQuote(reportData(1)), { instanceOf: AttestationError });
  t.is(err?.code, "EE-ATT-PROVIDER");
  t.true(err?.message.includes(`${root} does not exist`), err?.message);
});

test("a quote that takes too long is EE-ATT-PROVIDER naming outblob, and the entry is removed", async (t) => {
  const { provider, standIn } = await setup(t, { timeoutMs: 1000 });
  standIn.delayOutblob(3000);
  const err = await t.throwsAsync(provider.getQuote(reportData(2)), { instanceOf: AttestationError });
  t.is(err?.code, "EE-ATT-PROVIDER");
  t.regex(err?.message ?? "", /read .*\/outblob: no answer within 1000 ms/);
  t.deepEqual(await standIn.entries(), []);
});

test("concurrent requests use one entry at a time", async (t) => {
  const { provider, standIn } = await setup(t);
  standIn.delayOutblob(20);
  await Promise.all([1, 2, 3].map((seed) => provider.getQuote(reportData(seed))));
  t.is(standIn.maxConcurrentQuotes(), 1);
  t.deepEqual(await standIn.entries(), []);
});

test("the stand-in refuses outblob before inblob, as the kernel does", async (t) => {
  const { root, standIn } = await setup(t);
  const entry = join(root, "manual");
  await standIn.fs.mkdir(entry);
  const err = await t.throwsAsync(standIn.fs.readFile(join(entry, "outblob")));
  t.like(err, { code: "EINVAL" });
  await standIn.fs.rmdir(entry);
  t.deepEqual(await standIn.entries(), []);
});

test("refuses a non-positive timeout with EE-ATT-PROVIDER", (t) => {
  const err = t.throws(() => createTsmQuoteProvider({ timeoutMs: 0 }), { instanceOf: AttestationError });
  t.is(err?.code, "EE-ATT-PROVIDER");
});
