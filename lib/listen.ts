// Binding a server to HOST:PORT, with a bind failure as a typed error that names the address and the setting
// (flag, config key or environment variable) that moves it: the control plane, the agent API and `npm start`
// all report a busy port the same way, instead of a stack trace. Imports node:net and spec/errors.
import type { Server } from "node:net";
import { StartupError } from "../spec/errors.ts";

export interface ListenAt {
  host: string;
  port: number;
  /** What the operator changes to listen elsewhere, as they would type it: `--listen HOST:PORT`, `EE_PORT`. */
  setting: string;
  backlog?: number;
}

export function listenOn(server: Server, at: ListenAt): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException) => reject(listenError(at, err));
    server.once("error", failed);
    server.listen({ host: at.host, port: at.port, backlog: at.backlog }, () => {
      server.off("error", failed);
      resolve();
    });
  });
}

export function listenError(at: ListenAt, err: NodeJS.ErrnoException): StartupError {
  const address = at.host.includes(":") ? `[${at.host}]:${at.port}` : `${at.host}:${at.port}`;
  const details = { address, setting: at.setting, errno: err.code ?? null };
  if (err.code === "EADDRINUSE")
    return new StartupError(
      "EE-LISTEN-BUSY",
      `${address} is already in use (is another control plane or agent running?); listen elsewhere with ${at.setting}`,
      details,
    );
  return new StartupError(
    "EE-LISTEN-FAILED",
    `cannot listen on ${address} (${err.code ?? err.message}); listen elsewhere with ${at.setting}`,
    details,
  );
}
