// `eectl attest dev-init` through clipanion: output, refusal without --force, and its usage text.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import test from "ava";
import { Cli } from "clipanion";
import { AttestDevInitCommand } from "../../cli/commands/attest.ts";
import { tempDir } from "./fixtures.ts";

async function eectl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const cli = Cli.from([AttestDevInitCommand], { binaryName: "eectl" });
  const collect = () => {
    const stream = new PassThrough();
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    return { stream, text: () => Buffer.concat(chunks).toString("utf8") };
  };
  const out = collect();
  const err = collect();
  const code = await cli.run(args, { stdout: out.stream, stderr: err.stream });
  return { code, stdout: out.text(), stderr: err.text() };
}

test("dev-init creates the PKI and prints the files and the root fingerprint", async (t) => {
  const dir = join(tempDir(t), "dev");
  const run = await eectl(["attest", "dev-init", "--dir", dir]);
  t.is(run.code, 0, run.stderr);
  t.true(existsSync(join(dir, "root-ca.pem")));
  t.regex(run.stdout, /NOT for production/);
  t.regex(run.stdout, /root-ca\.pem/);
  t.regex(run.stdout, /root SHA-256 fingerprint: [0-9a-f]{64}/);
});

test("a second dev-init fails with EE-CONFIG-INVALID unless --force", async (t) => {
  const dir = tempDir(t);
  t.is((await eectl(["attest", "dev-init", "--dir", dir])).code, 0);
  const again = await eectl(["attest", "dev-init", "--dir", dir]);
  t.is(again.code, 1);
  t.regex(again.stderr, /EE-CONFIG-INVALID/);
  t.is((await eectl(["attest", "dev-init", "--dir", dir, "--force"])).code, 0);
});

test("--dir is required and the usage explains the command", async (t) => {
  t.not((await eectl(["attest", "dev-init"])).code, 0);
  const help = await eectl(["attest", "dev-init", "--help"]);
  t.regex(help.stdout, /--dev-attestation/);
  t.regex(help.stdout, /eectl attest dev-init --dir/);
});
