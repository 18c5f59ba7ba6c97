// A ConfigFS-TSM stand-in for machines without TDX: a TsmFs (attestation/providers/tsm.ts) over a real temp
// directory that enforces the kernel's report protocol. mkdir makes an entry with `generation` 0 and
// `provider` tdx_guest; a write to `inblob` stores it and bumps generation; reading `outblob` returns a dev
// quote (attestation/providers/dev.ts) over the stored inblob, and fails with EINVAL before any inblob, as the
// kernel's tdx_guest backend does. Paths outside an entry's attributes go to the real filesystem, so a missing
// root fails with ENOENT like the real one. Test-only; imports attestation/ modules and node built-ins.
import * as fsp from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { createDevQuoteProvider } from "../../attestation/providers/dev.ts";
import type { TsmFs } from "../../attestation/providers/tsm.ts";

export interface TsmStandIn {
  fs: TsmFs;
  /** Names of the entries currently under root. */
  entries(): Promise<string[]>;
  /** The next write to any entry's inblob also bumps generation once more, as a second writer would. */
  interfere(): void;
  /** Reads of outblob take this long (ms) before answering; 0 by default. */
  delayOutblob(ms: number): void;
  /** How many outblob reads were in flight at once, at most. */
  maxConcurrentQuotes(): number;
}

const INBLOB_MAX = 64;

function kernelError(code: string, errno: number, syscall: string, path: string): Error {
  return Object.assign(new Error(`${code}: ${syscall} '${path}'`), { code, errno: -errno, syscall, path });
}

export function createTsmStandIn(root: string, devDir: string): TsmStandIn {
  const dev = createDevQuoteProvider({ dir: devDir });
  let interference = false;
  let outblobDelay = 0;
  let inFlight = 0;
  let maxInFlight = 0;

  const attribute = (path: string) => ({ entry: dirname(path), name: basename(path) });
  const isEntry = (dir: string) => dirname(dir) === root;
  const generation = async (entry: string) => Number(await fsp.readFile(join(entry, "generation"), "utf8"));

  const fs: TsmFs = {
    async mkdir(path) {
      await fsp.mkdir(path);
      if (isEntry(path)) {
        await fsp.writeFile(join(path, "generation"), "0\n");
        await fsp.writeFile(join(path, "provider"), "tdx_guest\n");
      }
    },
    async rmdir(path) {
      // configfs removes an entry together with its attributes; a plain directory needs them removed first.
      if (isEntry(path)) {
        for (const name of await fsp.readdir(path)) await fsp.rm(join(path, name));
      }
      await fsp.rmdir(path);
    },
    async readFile(path) {
      const { entry, name } = attribute(path);
      if (!isEntry(entry) || name !== "outblob") return fsp.readFile(path);
      const inblob = await fsp.readFile(join(entry, "inblob")).catch((err: NodeJS.ErrnoException) => {
        if (err.code === "ENOENT") throw kernelError("EINVAL", 22, "read", path);
        throw err;
      });
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        if (outblobDelay > 0) await new Promise((resolve) => setTimeout(resolve, outblobDelay));
        // Like tdx_guest: REPORTDATA shorter than 64 bytes is zero-padded.
        const reportData = new Uint8Array(INBLOB_MAX);
        reportData.set(inblob);
        return await dev.getQuote(reportData);
      } finally {
        inFlight--;
      }
    },
    async writeFile(path, data) {
      const { entry, name } = attribute(path);
      if (!isEntry(entry) || name !== "inblob") return fsp.writeFile(path, data);
      if (data.length > INBLOB_MAX) throw kernelError("EFBIG", 27, "write", path);
      const before = await generation(entry);
      await fsp.writeFile(path, data);
      const bumps = interference ? 2 : 1;
      interference = false;
      await fsp.writeFile(join(entry, "generation"), `${before + bumps}\n`);
    },
  };

  return {
    fs,
    entries: () => fsp.readdir(root),
    interfere: () => {
      interference = true;
    },
    delayOutblob: (ms) => {
      outblobDelay = ms;
    },
    maxConcurrentQuotes: () => maxInFlight,
  };
}
