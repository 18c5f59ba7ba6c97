// Where `eectl control-plane` takes the admin token from, so that it need not show in `ps`: `--admin-token-file`
// (the first line of a file only its owner can write), `$EE_ADMIN_TOKEN`, or `--admin-token` (still accepted, with
// a warning: any local user can read a command line). A token file that group or others can write is refused
// (they could choose the admin token); one they can read is accepted with a warning, since secret mounts (Docker,
// Kubernetes) are often 0444/0644 and the token is then exposed to them, which the operator should know.
// Imports node:fs, cli/input-file and spec/errors.
import { statSync } from "node:fs";
import { ValidationError } from "../spec/errors.ts";
import { readInputFile } from "./input-file.ts";

export interface AdminTokenSources {
  flag: string | undefined;
  file: string | undefined;
  env: string | undefined;
}

/** The token to start with (undefined: the stored digest, else generated); warnings go to `warn`. */
export async function adminTokenFrom(
  s: AdminTokenSources,
  warn: (fields: Record<string, unknown>, message: string) => void,
): Promise<string | undefined> {
  if (s.flag !== undefined && s.file !== undefined)
    throw new ValidationError("EE-CONFIG-INVALID", "give --admin-token or --admin-token-file, not both");
  if (s.flag !== undefined) {
    warn(
      {},
      "--admin-token shows the token to every local user (ps, /proc/PID/cmdline); use --admin-token-file or EE_ADMIN_TOKEN",
    );
    return s.flag;
  }
  if (s.file !== undefined) return readTokenFile(s.file, warn);
  return s.env || undefined;
}

async function readTokenFile(
  path: string,
  warn: (fields: Record<string, unknown>, message: string) => void,
): Promise<string> {
  const text = (await readInputFile(path, "--admin-token-file")).toString("utf8");
  const mode = statSync(path).mode & 0o777;
  const octal = `0${mode.toString(8)}`;
  if ((mode & 0o022) !== 0)
    throw new ValidationError(
      "EE-CONFIG-INVALID",
      `--admin-token-file ${path}: group or others can write it (mode ${octal}), so they could choose the admin token; chmod 600 it`,
    );
  if ((mode & 0o044) !== 0)
    warn(
      { file: path, mode: octal },
      "--admin-token-file is readable by group or others: they can use the admin token; chmod 600 it",
    );
  const token = text.split(/\r?\n/)[0]!.trim();
  if (token === "")
    throw new ValidationError("EE-CONFIG-INVALID", `--admin-token-file ${path}: the first line is empty`);
  return token;
}
