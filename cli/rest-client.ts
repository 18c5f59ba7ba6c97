// The operator commands' REST client: bearer auth, JSON in and out, streams (newline-delimited JSON, server-sent
// events), and typed errors from the contract's error body, so every command reports `CODE: message` the same way.
// An https CP is verified against the system's CAs, or only against --cacert / EE_CACERT when one is given.
import { untrustedCertificate } from "../lib/tls-failure.ts";
import { readCaBundle } from "../lib/tls-files.ts";
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
  /** The CA bundle's PEM, for an https CP when --cacert or EE_CACERT names one. */
  readonly #ca: string | undefined;
  #caFetch: Promise<(url: string, init: RequestInit) => Promise<Response>> | undefined;

  constructor(cp: string | undefined, token: string | undefined, cacert?: string) {
    this.base = (cp ?? process.env.EE_CP_URL ?? "http://127.0.0.1:8080").replace(/\/+$/, "");
    this.#token = token ?? process.env.EE_TOKEN;
    if (!/^https?:\/\//.test(this.base))
      throw new ValidationError("EE-CONFIG-INVALID", `--cp must be an http(s) URL, got "${this.base}"`);
    // Plain http has no certificate to check: a CA set for other shells' https CPs is not read.
    const caFile = cacert ?? (process.env.EE_CACERT || undefined);
    if (caFile && this.base.startsWith("https:"))
      this.#ca = readCaBundle(caFile, cacert ? "--cacert" : "EE_CACERT");
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

  async put<T>(path: string, body: unknown): Promise<T> {
    return this.#request<T>("PUT", path, body);
  }

  /** A DELETE; resolves to the JSON answer, or undefined when there is none (204). */
  async delete<T = undefined>(path: string): Promise<T> {
    return this.#request<T>("DELETE", path);
  }

  /**
   * Opens a streaming GET of server-sent events (throwing on an error answer), then yields each complete event
   * until the server ends the stream or `signal` aborts it. An `error` event (an error body, sent by a server
   * that ends the stream after its 200) is thrown as a RestError.
   */
  async events(path: string, signal: AbortSignal): Promise<AsyncGenerator<{ event: string; data: string }>> {
    const res = await this.#open(path, "text/event-stream", signal);
    return (async function* () {
      // An event cut off by the end of the stream is incomplete, so it is dropped (as EventSource does).
      for await (const block of records(res, "\n\n", false)) {
        let event = "message";
        let data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) event = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        const error = event === "error" ? streamError(res, JSON.parse(data) as ContractError) : null;
        if (error) throw error;
        yield { event, data };
      }
    })();
  }

  /**
   * Opens a streaming GET of newline-delimited JSON, then yields one value per line, as `events` does. A line
   * that is an error body is how the server reports a failure after its 200: it is thrown as a RestError.
   */
  async ndjson<T>(path: string, signal: AbortSignal): Promise<AsyncGenerator<T>> {
    const res = await this.#open(path, "application/x-ndjson", signal);
    return (async function* () {
      for await (const line of records(res, "\n", true)) {
        if (!line.trim()) continue;
        const value = JSON.parse(line) as T | ContractError;
        const error = streamError(res, value as ContractError);
        if (error) throw error;
        yield value as T;
      }
    })();
  }

  async #open(path: string, accept: string, signal: AbortSignal): Promise<Response> {
    const res = await this.#fetch(path, { headers: { ...this.headers(), accept }, signal });
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
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  async #fetch(path: string, init: RequestInit): Promise<Response> {
    const ca = this.#ca;
    if (ca) this.#caFetch ??= import("./https-fetch.ts").then((m) => m.fetchTrusting(ca));
    try {
      return await (this.#caFetch
        ? (await this.#caFetch)(`${this.base}${path}`, init)
        : fetch(`${this.base}${path}`, init));
    } catch (err) {
      const untrusted = untrustedCertificate(err);
      if (untrusted)
        throw new RestError(
          0,
          "EE-TLS-UNTRUSTED",
          `the control plane at ${this.base} presented a certificate that is not trusted (${untrusted.message}); ` +
            (this.#ca
              ? "is --cacert / EE_CACERT the CA that signed it?"
              : "pass its CA with --cacert PEM or EE_CACERT"),
          { verify: untrusted.code },
        );
      const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : String(err);
      throw new RestError(
        0,
        "EE-CLI-UNREACHABLE",
        `cannot reach the control plane at ${this.base}: ${cause}`,
      );
    }
  }
}

/** The contract's error body, as far as a client can trust it. */
interface ContractError {
  error?: { code?: ErrorCode; message?: string; details?: unknown };
}

/** The RestError a streamed error body stands for, or null when the value is not one. */
function streamError(res: Response, value: ContractError): RestError | null {
  const error = value?.error;
  return error?.code ? new RestError(res.status, error.code, error.message ?? "", error.details) : null;
}

async function toRestError(res: Response): Promise<RestError> {
  try {
    const body = (await res.json()) as ContractError;
    if (body.error?.code)
      return new RestError(res.status, body.error.code, body.error.message ?? "", body.error.details);
  } catch {
    // not a contract error body; fall through
  }
  return new RestError(res.status, "EE-INTERNAL", `HTTP ${res.status} without an error body`);
}

/** Splits a streamed body into records ending in `sep`; the text after the last `sep` too when `withTail`. */
async function* records(res: Response, sep: string, withTail: boolean): AsyncGenerator<string> {
  if (!res.body) return;
  const decoder = new TextDecoder();
  let buf = "";
  for await (const chunk of res.body) {
    buf += decoder.decode(chunk as Uint8Array, { stream: true });
    for (let cut = buf.indexOf(sep); cut >= 0; cut = buf.indexOf(sep)) {
      yield buf.slice(0, cut);
      buf = buf.slice(cut + sep.length);
    }
  }
  if (withTail && buf) yield buf;
}
