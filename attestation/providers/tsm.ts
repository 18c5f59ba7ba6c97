// The ConfigFS-TSM quote provider: hardware TDX quotes through the kernel's report interface
// (Documentation/ABI/testing/configfs-tsm). Each quote is one entry under the report root: mkdir, read
// `generation`, write REPORTDATA to `inblob`, read the quote from `outblob`, read `generation` again, rmdir.
// File access goes through a small fs port so tests can run the same protocol over a stand-in.
// Imports attestation/providers/provider.ts, spec/errors.ts and node built-ins.
import { randomBytes } from "node:crypto";
import * as nodeFs from "node:fs/promises";
import { join } from "node:path";
import { AttestationError } from "../../spec/errors.ts";
import type { QuoteProvider } from "./provider.ts";

export const TSM_REPORT_ROOT = "/sys/kernel/config/tsm/report";

/** The four file operations the protocol needs; node:fs/promises by default. */
export interface TsmFs {
  mkdir(path: string): Promise<unknown>;
  rmdir(path: string): Promise<unknown>;
  readFile(path: string): Promise<Uint8Array>;
  writeFile(path: string, data: Uint8Array): Promise<unknown>;
}

export interface TsmQuoteProviderOptions {
  /** The configfs report directory; defaults to TSM_REPORT_ROOT. */
  root?: string;
  /** Upper bound on one quote, all steps included; defaults to 30 s. */
  timeoutMs?: number;
  /** Defaults to node:fs/promises; tests pass a stand-in. */
  fs?: TsmFs;
}

const REPORT_DATA_SIZE = 64;
// Quote generation goes out to the host's quoting service and can stall; the CP's challenge expires long before
// 30 s would matter, so this only has to stop a wedged host from hanging the agent forever.
const DEFAULT_TIMEOUT_MS = 30_000;
// The only TSM backend whose quotes the CP's verifier accepts.
const TDX_PROVIDER = "tdx_guest";

const defaultFs: TsmFs = {
  mkdir: (path) => nodeFs.mkdir(path),
  rmdir: (path) => nodeFs.rmdir(path),
  readFile: (path) => nodeFs.readFile(path),
  writeFile: (path, data) => nodeFs.writeFile(path, data),
};

export function createTsmQuoteProvider(opts: TsmQuoteProviderOptions = {}): QuoteProvider {
  const root = opts.root ?? TSM_REPORT_ROOT;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const fs = opts.fs ?? defaultFs;
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
    throw new AttestationError("EE-ATT-PROVIDER", `timeoutMs must be a positive integer, got ${timeoutMs}`);
  }

  // Requests are serialized: the kernel's tdx_guest driver handles one quote at a time anyway, so parallel
  // entries would only queue in the kernel, and one entry at a time keeps at most one entry of ours alive
  // (nothing piles up under the root if the host stalls). A failed request does not block the next one.
  let tail: Promise<unknown> = Promise.resolve();

  return {
    name: "tsm",
    getQuote(reportData) {
      if (!(reportData instanceof Uint8Array) || reportData.length !== REPORT_DATA_SIZE) {
        const got = reportData instanceof Uint8Array ? `${reportData.length} bytes` : typeof reportData;
        return Promise.reject(
          new AttestationError("EE-ATT-PROVIDER", `reportData must be ${REPORT_DATA_SIZE} bytes, got ${got}`),
        );
      }
      const run = tail.then(() => quoteOnce(fs, root, timeoutMs, reportData));
      tail = run.catch(() => undefined);
      return run;
    },
  };
}

async function quoteOnce(
  fs: TsmFs,
  root: string,
  timeoutMs: number,
  reportData: Uint8Array,
): Promise<Uint8Array> {
  // pid + random: unique across agents sharing the root, and across restarts that left an entry behind.
  const entry = join(root, `ee-${process.pid}-${randomBytes(6).toString("hex")}`);
  const deadline = Date.now() + timeoutMs;
  const step = <T>(what: string, path: string, op: () => Promise<T>) =>
    withDeadline(deadline, timeoutMs, what, path, op);

  try {
    await step("mkdir", entry, () => fs.mkdir(entry));
  } catch (err) {
    if (codeOf(err) === "ENOENT") {
      throw new AttestationError(
        "EE-ATT-PROVIDER",
        `tsm: ${root} does not exist (mkdir ${entry}: ENOENT); is configfs mounted at /sys/kernel/config and is ` +
          `this a TDX guest with the tdx_guest driver?`,
      );
    }
    throw err;
  }

  let failure: unknown;
  try {
    const provider = await readProvider(fs, entry, step);
    if (provider !== undefined && provider !== TDX_PROVIDER) {
      throw new AttestationError(
        "EE-ATT-PROVIDER",
        `tsm: ${join(entry, "provider")} is "${provider}", not "${TDX_PROVIDER}"; only TDX quotes are accepted`,
      );
    }
    const before = await readGeneration(fs, entry, step);
    await step("write", join(entry, "inblob"), () => fs.writeFile(join(entry, "inblob"), reportData));
    const quote = await step("read", join(entry, "outblob"), () => fs.readFile(join(entry, "outblob")));
    const after = await readGeneration(fs, entry, step);
    // Each write to the entry bumps generation; anything but our one write means another writer changed inblob
    // between our write and the read, so the quote may carry their REPORTDATA, not ours.
    if (after !== before + 1) {
      throw new AttestationError(
        "EE-ATT-PROVIDER",
        `tsm: ${join(entry, "generation")} went from ${before} to ${after} across one write; another writer ` +
          `used the entry, so the quote is discarded`,
      );
    }
    if (quote.length === 0) {
      throw new AttestationError("EE-ATT-PROVIDER", `tsm: read ${join(entry, "outblob")}: empty quote`);
    }
    return new Uint8Array(quote);
  } catch (err) {
    failure = err;
    throw err;
  } finally {
    // Always remove the entry. A failure to do so is reported only when nothing else failed first, so the
    // original cause is what the caller sees.
    try {
      await fs.rmdir(entry);
    } catch (err) {
      if (failure === undefined) {
        // biome-ignore lint/correctness/noUnsafeFinally: a leaked entry after a good quote is still a failure.
        throw new AttestationError("EE-ATT-PROVIDER", `tsm: rmdir ${entry}: ${messageOf(err)}`);
      }
    }
  }
}

type Step = <T>(what: string, path: string, op: () => Promise<T>) => Promise<T>;

async function readGeneration(fs: TsmFs, entry: string, step: Step): Promise<number> {
  const path = join(entry, "generation");
  const text = Buffer.from(await step("read", path, () => fs.readFile(path)))
    .toString("utf8")
    .trim();
  if (!/^\d+$/.test(text)) {
    throw new AttestationError(
      "EE-ATT-PROVIDER",
      `tsm: read ${path}: not a generation number: ${JSON.stringify(text)}`,
    );
  }
  return Number(text);
}

/** The backend name, or undefined on kernels without the `provider` attribute. */
async function readProvider(fs: TsmFs, entry: string, step: Step): Promise<string | undefined> {
  const path = join(entry, "provider");
  try {
    return Buffer.from(await step("read", path, () => fs.readFile(path)))
      .toString("utf8")
      .trim();
  } catch (err) {
    if (codeOf(err) === "ENOENT") return undefined;
    throw err;
  }
}

/** Runs one step against the shared deadline; every failure becomes EE-ATT-PROVIDER naming the step and path. */
async function withDeadline<T>(
  deadline: number,
  timeoutMs: number,
  what: string,
  path: string,
  op: () => Promise<T>,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new AttestationError("EE-ATT-PROVIDER", `tsm: ${what} ${path}: no answer within ${timeoutMs} ms`),
        ),
      Math.max(0, deadline - Date.now()),
    );
  });
  try {
    return await Promise.race([op(), expired]);
  } catch (err) {
    if (err instanceof AttestationError) throw err;
    const wrapped = new AttestationError("EE-ATT-PROVIDER", `tsm: ${what} ${path}: ${messageOf(err)}`);
    // Kept so callers (and the mkdir/provider steps above) can still tell ENOENT from other failures.
    wrapped.cause = err;
    throw wrapped;
  } finally {
    clearTimeout(timer);
  }
}

function codeOf(err: unknown): string | undefined {
  if (err instanceof AttestationError) return codeOf(err.cause);
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

function messageOf(err: unknown): string {
  const code = codeOf(err);
  const message = err instanceof Error ? err.message : String(err);
  return code !== undefined && !message.startsWith(code) ? `${code}: ${message}` : message;
}
