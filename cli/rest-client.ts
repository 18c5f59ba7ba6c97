// The operator commands' REST client: bearer auth, JSON in and out (and newline-delimited JSON streams), and
// typed errors from the contract's error body, so every command reports `CODE: message` the same way.
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

  /** A DELETE; resolves to the JSON answer, or undefined when there is none (204). */
  async delete<T = undefined>(path: string): Promise<T> {
    return this.#request<T>("DELETE", path);
  }

  /** Opens a streaming GET (server-sent events); the caller reads the body. */
  async stream(path: string, signal: AbortSignal): Promise<Response> {
    const res = await this.#fetch(path, { headers: this.headers(), signal });
    if (!res.ok) throw await toRestError(res);
    return res;
  }

  /** A streaming GET of newline-delimited JSON: one value per line until the server ends it or `signal` aborts. */
  async *ndjson<T>(path: string, signal: AbortSignal): AsyncGenerator<T> {
    const res = await this.#fetch(path, {
      headers: { ...this.headers(), accept: "application/x-ndjson" },
      signal,
    });
    if (!res.ok) throw await toRestError(res);
    if (!res.body) return;
    const decoder = new TextDecoder();
    let buf = "";
    for await (const chunk of res.body) {
      buf += decoder.decode(chunk as Uint8Array, { stream: true });
      let cut = buf.indexOf("\n");
      while (cut >= 0) {
        const line = buf.slice(0, cut).trim();
        buf = buf.slice(cut + 1);
        if (line) yield JSON.parse(line) as T;
        cut = buf.indexOf("\n");
      }
    }
    if (buf.trim()) yield JSON.parse(buf) as T;
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
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
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
