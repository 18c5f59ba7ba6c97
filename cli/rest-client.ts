// The operator commands' REST client: bearer auth, JSON in and out, and typed errors from the contract's
// error body, so every command reports `CODE: message` the same way.
import { AuthError, type ErrorCode, ValidationError } from "../spec/errors.ts";

export class RestError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: unknown;
  constructor(status: number, code: string, message: string, details?: unknown) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export class RestClient {
  readonly base: string;
  readonly #token: string | undefined;

  constructor(cp: string | undefined, token: string | undefined) {
    this.base = (cp ?? process.env.EE_CP_URL ?? "http://127.0.0.1:8080").replace(/\/+$/, "");
    this.#token = token ?? process.env.EE_TOKEN;
    if (!/^https?:\/\//.test(this.base))
      throw new ValidationError("EE-CONFIG-INVALID", `--cp must be an http(s) URL, got "${this.base}"`);
  }

  headers(): Record<string, string> {
    if (!this.#token) throw new AuthError("EE-AUTH-MISSING", "no token: pass --token or set EE_TOKEN");
    return { authorization: `Bearer ${this.#token}`, accept: "application/json" };
  }

  async get<T>(path: string): Promise<T> {
    return this.#request<T>("GET", path);
  }

  async post<T>(path: string, body: unknown, extra: Record<string, string> = {}): Promise<T> {
    return this.#request<T>("POST", path, body, extra);
  }

  /** Opens a streaming GET (server-sent events); the caller reads the body. */
  async stream(path: string, signal: AbortSignal): Promise<Response> {
    const res = await this.#fetch(path, { headers: this.headers(), signal });
    if (!res.ok) throw await toRestError(res);
    return res;
  }

  async #request<T>(
    method: string,
    path: string,
    body?: unknown,
    extra: Record<string, string> = {},
  ): Promise<T> {
    const init: RequestInit = { method, headers: { ...this.headers(), ...extra } };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)["content-type"] = "application/json";
    }
    const res = await this.#fetch(path, init);
    if (!res.ok) throw await toRestError(res);
    return (await res.json()) as T;
  }

  async #fetch(path: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(`${this.base}${path}`, init);
    } catch (err) {
      const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : String(err);
      throw new RestError(
        0,
        "EE-CLI-UNREACHABLE",
        `cannot reach the control plane at ${this.base}: ${cause}`,
      );
    }
  }
}

async function toRestError(res: Response): Promise<RestError> {
  try {
    const body = (await res.json()) as { error?: { code?: ErrorCode; message?: string; details?: unknown } };
    if (body.error?.code)
      return new RestError(res.status, body.error.code, body.error.message ?? "", body.error.details);
  } catch {
    // not a contract error body; fall through
  }
  return new RestError(res.status, "EE-INTERNAL", `HTTP ${res.status} without an error body`);
}
