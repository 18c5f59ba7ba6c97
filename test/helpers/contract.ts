// Holds what the tests exchange with a running CP or agent to the OpenAPI documents (spec/control-plane.yaml,
// spec/agent-control.yaml): the request must be a documented operation, with documented path and query
// parameters and a body of its schema; the answer's status must be listed for that operation, its content type documented and its
// body of the documented schema. Schemas are held closed: an object schema that lists `properties` and says
// nothing of `additionalProperties` accepts no other field here (unevaluatedProperties: false, added at compile
// time where the object is complete, so allOf/anyOf/oneOf branches still combine), which is how a field added in
// a handler but not in the document fails a test. A mismatch throws ContractViolation from the call.
// With EE_CONTRACT_COVERAGE=DIR each checked operation and status is appended to DIR (see contract-coverage.ts).
import { appendFileSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { parse } from "yaml";

type Json = Record<string, unknown>;

export class ContractViolation extends Error {
  override name = "ContractViolation";
}

/** Per call: `badRequest` marks a request that breaks the contract on purpose (its answer is still checked). */
export interface ContractInit extends RequestInit {
  badRequest?: boolean;
}

export interface Exchange {
  method: string;
  /** Path and query, as requested. */
  url: string;
  requestType?: string | null;
  requestBody?: string;
  status: number;
  responseType: string | null;
  /** The whole body; omitted for a stream (its lines are checked as they are read). */
  responseBody?: string;
  badRequest?: boolean;
}

interface Operation {
  key: string;
  /** The agent's `/{workloadPath}`: what the proxy forwards, any method and query; only its own answers are documented. */
  catchAll: boolean;
  match: RegExp;
  literalSegments: number;
  /** Query parameter name → its schema. */
  query: Map<string, unknown>;
  /** Path parameter name → its schema. */
  pathParams: Map<string, unknown>;
  requiredQuery: string[];
  request?: Record<string, Json>;
  responses: Record<string, Json>;
}

const HTTP_METHODS = ["get", "put", "post", "delete", "patch", "options", "head", "trace"];
const COMPOSITIONS = ["allOf", "anyOf", "oneOf"] as const;
const STREAM_TYPES = new Set(["text/event-stream", "application/x-ndjson"]);
const baseType = (t: string | null | undefined) => (t ?? "").split(";")[0]!.trim().toLowerCase();
const isJsonType = (t: string) => t === "application/json" || t.endsWith("+json");
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** Replaces every local $ref by what it points at (the documents have no cycles; one would throw). */
export function inlineRefs(doc: Json, node: unknown, seen: string[] = []): unknown {
  if (Array.isArray(node)) return node.map((n) => inlineRefs(doc, n, seen));
  if (!isObject(node)) return node;
  const { $ref, ...rest } = node;
  const out: Json = {};
  for (const [k, v] of Object.entries(rest)) out[k] = inlineRefs(doc, v, seen);
  if (typeof $ref !== "string") return out;
  if (seen.includes($ref)) throw new Error(`circular $ref ${$ref}`);
  let target: unknown = doc;
  for (const raw of $ref.replace(/^#\//, "").split("/"))
    target = isObject(target) ? target[raw.replace(/~1/g, "/").replace(/~0/g, "~")] : undefined;
  if (target === undefined) throw new Error(`unresolved $ref ${$ref}`);
  const resolved = inlineRefs(doc, target, [...seen, $ref]) as Json;
  // A $ref with constraints beside it applies both (JSON Schema 2020-12); a description alone just annotates.
  const constraints = Object.keys(out).filter((k) => k !== "description" && k !== "summary");
  return constraints.length === 0 ? { ...resolved, ...out } : { allOf: [resolved], ...out };
}

/**
 * The schema as the tests hold it: every complete object schema that lists properties (or combines schemas
 * that do) and states no additionalProperties/unevaluatedProperties is closed. A branch of allOf/anyOf/oneOf
 * stays open: the schema that combines it is the complete object, and unevaluatedProperties there sees the
 * properties every matching branch evaluated.
 */
export function closeSchema(schema: unknown, branch = false): unknown {
  if (!isObject(schema)) return schema;
  const s = mergeAllOf(schema);
  const out: Json = { ...s };
  for (const k of ["properties", "patternProperties", "$defs"] as const)
    if (isObject(s[k]))
      out[k] = Object.fromEntries(Object.entries(s[k] as Json).map(([n, v]) => [n, closeSchema(v)]));
  for (const k of ["additionalProperties", "items", "contains", "not", "if", "then", "else"] as const)
    if (isObject(s[k])) out[k] = closeSchema(s[k]);
  if (Array.isArray(s.prefixItems)) out.prefixItems = s.prefixItems.map((v) => closeSchema(v));
  let composed = false;
  for (const k of COMPOSITIONS)
    if (Array.isArray(s[k])) {
      composed = true;
      out[k] = (s[k] as unknown[]).map((v) => closeSchema(v, true));
    }
  const open = "additionalProperties" in s || "unevaluatedProperties" in s || "patternProperties" in s;
  if (!branch && !open && (isObject(s.properties) || (composed && listsProperties(s))))
    out.unevaluatedProperties = false;
  return out;
}

const ANNOTATIONS = new Set([
  "description",
  "summary",
  "title",
  "examples",
  "example",
  "default",
  "deprecated",
]);

/**
 * allOf of object schemas as one schema (properties met in several branches are combined the same way), so
 * closing it closes nested objects too: a closed `error` in one branch must not refuse the `message` another
 * branch's `error` allows. Left as it is when branches disagree on anything but annotations.
 */
function mergeAllOf(s: Json): Json {
  if (!Array.isArray(s.allOf)) return s;
  const { allOf, ...own } = s;
  const parts = [own, ...(allOf as unknown[]).map((b) => (isObject(b) ? mergeAllOf(b) : b))];
  if (!parts.every(isObject)) return s;
  const merged: Json = {};
  const properties: Record<string, unknown[]> = {};
  const required = new Set<string>();
  for (const part of parts as Json[]) {
    for (const [k, v] of Object.entries(part)) {
      if (k === "properties" && isObject(v))
        for (const [name, p] of Object.entries(v)) properties[name] = [...(properties[name] ?? []), p];
      else if (k === "required" && Array.isArray(v)) for (const r of v) required.add(String(r));
      else if (ANNOTATIONS.has(k)) merged[k] ??= v;
      else if (k in merged && !isDeepStrictEqual(merged[k], v)) return s;
      else merged[k] = v;
    }
  }
  if (COMPOSITIONS.some((k) => k in merged)) return s;
  if (Object.keys(properties).length > 0)
    merged.properties = Object.fromEntries(
      Object.entries(properties).map(([name, ps]) => [
        name,
        ps.length === 1 ? ps[0] : mergeAllOf({ allOf: ps }),
      ]),
    );
  if (required.size > 0) merged.required = [...required];
  return merged;
}

function listsProperties(s: unknown): boolean {
  if (!isObject(s)) return false;
  if (isObject(s.properties)) return true;
  return COMPOSITIONS.some((k) => Array.isArray(s[k]) && (s[k] as unknown[]).some(listsProperties));
}

export class Contract {
  readonly #file: string;
  readonly #ajv = new Ajv2020({ strict: false, allErrors: true });
  /** By the closed schema's JSON: the Error schema inlined under fifty responses compiles once. */
  readonly #validators = new Map<string, ValidateFunction>();
  #operations: Map<string, Operation[]> | undefined;

  constructor(file: string) {
    this.#file = file;
    (addFormatsModule as unknown as (ajv: Ajv2020) => void)(this.#ajv);
    // Loading the document and a first compile take a few hundred ms: pay them at import, before any test's
    // clock runs, rather than inside the first exchange of a timing-sensitive test.
    this.#ops();
    this.#ajv.compile({
      type: "object",
      properties: { a: { type: "string" } },
      unevaluatedProperties: false,
    });
  }

  /** `METHOD /template` of every documented operation and the statuses each lists. */
  documented(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const ops of this.#ops().values()) for (const op of ops) out.set(op.key, Object.keys(op.responses));
    return out;
  }

  /**
   * fetch, with the request and the answer checked; a stream's status and type are checked at once, its ndjson
   * lines as they are read.
   */
  async fetch(url: string | URL, init: ContractInit = {}): Promise<Response> {
    const { badRequest, ...rest } = init;
    const method = (rest.method ?? "GET").toUpperCase();
    const target = new URL(url);
    const pathAndQuery = `${target.pathname}${target.search}`;
    const headers = new Headers(rest.headers);
    const requestBody =
      typeof rest.body === "string"
        ? rest.body
        : rest.body instanceof Uint8Array
          ? Buffer.from(rest.body).toString("utf8")
          : undefined;
    const res = await fetch(url, rest);
    const responseType = res.headers.get("content-type");
    const base = { method, url: pathAndQuery, requestType: headers.get("content-type"), requestBody };
    const exchange: Exchange = {
      ...base,
      status: res.status,
      responseType,
      ...(badRequest ? { badRequest } : {}),
    };
    if (STREAM_TYPES.has(baseType(responseType)) && res.body) {
      const schema = this.check(exchange);
      if (!schema) return res;
      const lines = ndjsonChecker((line) => this.#validate(schema, line, `${method} ${pathAndQuery} line`));
      return new Response(res.body.pipeThrough(lines), res);
    }
    const text = await res.text();
    this.check({ ...exchange, responseBody: text });
    return new Response(text === "" && [101, 204, 205, 304].includes(res.status) ? null : text, res);
  }

  /**
   * Checks one exchange; throws ContractViolation. Returns the documented schema of a stream's items (ndjson),
   * for the caller to check them as they arrive.
   */
  check(x: Exchange): unknown {
    const path = x.url.split("?")[0]!;
    const op = this.#find(x.method, path);
    const name = `${x.method} ${x.url}`;
    if (!op) {
      if (x.badRequest) return undefined;
      throw new ContractViolation(`${name} is not an operation of spec/${this.#file}`);
    }
    if (!x.badRequest && !op.catchAll) this.#checkRequest(op, x, name);
    const listed = [String(x.status), `${String(x.status)[0]}XX`, "default"].find((k) => op.responses[k]);
    const response = listed ? op.responses[listed] : undefined;
    if (!listed || !response)
      throw new ContractViolation(
        `${name} answered ${x.status}, which ${op.key} does not document (it lists ${Object.keys(op.responses).join(", ")})`,
      );
    this.#record(op.key, listed);
    const content = isObject(response.content) ? response.content : undefined;
    const hasBody = x.responseBody === undefined || x.responseBody !== "";
    if (!content) {
      if (hasBody && op.responses[String(x.status)])
        throw new ContractViolation(`${name} answered ${x.status} with a body, and ${op.key} documents none`);
      return undefined;
    }
    if (!hasBody) throw new ContractViolation(`${name} answered ${x.status} without the documented body`);
    const type = baseType(x.responseType);
    const media = Object.entries(content).find(([k]) => baseType(k) === type)?.[1];
    if (!isObject(media))
      throw new ContractViolation(
        `${name} answered ${x.status} as ${type || "no type"}, ${op.key} documents ${Object.keys(content).join(", ")}`,
      );
    if (x.responseBody === undefined) return type === "application/x-ndjson" ? media.schema : undefined;
    if (media.schema === undefined) return undefined;
    if (isJsonType(type))
      this.#validate(media.schema, parseJson(x.responseBody, name), `${name} → ${x.status}`);
    if (type === "application/x-ndjson")
      for (const line of x.responseBody.split("\n"))
        if (line.trim()) this.#validate(media.schema, parseJson(line, name), `${name} → ${x.status} line`);
    return undefined;
  }

  #checkRequest(op: Operation, x: Exchange, name: string): void {
    const segments = op.match.exec(x.url.split("?")[0]!)?.groups ?? {};
    for (const [key, value] of Object.entries(segments)) {
      const schema = op.pathParams.get(key) ?? {};
      const decoded = decodeURIComponent(value);
      this.#validate(schema, queryValue(schema, decoded), `${name}: path parameter ${key}`);
    }
    const params = new URLSearchParams(x.url.split("?")[1] ?? "");
    for (const key of new Set(params.keys())) {
      const schema = op.query.get(key);
      if (!schema) throw new ContractViolation(`${name}: query parameter ${key} is not documented`);
      const values = params.getAll(key);
      if (values.length > 1) throw new ContractViolation(`${name}: query parameter ${key} is repeated`);
      this.#validate(schema, queryValue(schema, values[0]!), `${name}: query parameter ${key}`);
    }
    for (const key of op.requiredQuery)
      if (!params.has(key))
        throw new ContractViolation(`${name}: required query parameter ${key} is missing`);
    if (!op.request) {
      if (x.requestBody) throw new ContractViolation(`${name} sent a body, and ${op.key} takes none`);
      return;
    }
    if (x.requestBody === undefined) return; // the documents mark bodies required; the answer says if it mattered
    const type = baseType(x.requestType);
    const media = Object.entries(op.request).find(([k]) => baseType(k) === type)?.[1];
    if (!isObject(media))
      throw new ContractViolation(
        `${name} sent ${type || "no type"}, ${op.key} takes ${Object.keys(op.request)}`,
      );
    if (isJsonType(type) && media.schema !== undefined)
      this.#validate(media.schema, parseJson(x.requestBody, `${name} request`), `${name} request body`);
  }

  #validate(schema: unknown, value: unknown, what: string): void {
    const closed = closeSchema(schema) as Json;
    const key = JSON.stringify(closed);
    let validate = this.#validators.get(key);
    if (!validate) {
      validate = this.#ajv.compile(closed);
      this.#validators.set(key, validate);
    }
    if (validate(value)) return;
    const errors = (validate.errors ?? [])
      .map((e) => `${e.instancePath || "/"} ${e.message}${e.params ? ` ${JSON.stringify(e.params)}` : ""}`)
      .join("; ");
    throw new ContractViolation(
      `${what} does not match spec/${this.#file}: ${errors}\nbody: ${JSON.stringify(value).slice(0, 2000)}`,
    );
  }

  #find(method: string, path: string): Operation | undefined {
    const ops = this.#ops();
    return (
      ops.get(method.toLowerCase())?.find((op) => op.match.test(path)) ??
      ops.get("get")?.find((op) => op.catchAll && op.match.test(path))
    );
  }

  #ops(): Map<string, Operation[]> {
    if (this.#operations) return this.#operations;
    const doc = parse(readFileSync(new URL(`../../spec/${this.#file}`, import.meta.url), "utf8")) as Json;
    const paths = inlineRefs(doc, doc.paths) as Record<string, Json>;
    const byMethod = new Map<string, Operation[]>();
    for (const [template, item] of Object.entries(paths)) {
      for (const method of HTTP_METHODS) {
        const op = item[method];
        if (!isObject(op)) continue;
        const parameters = [...((item.parameters as Json[]) ?? []), ...((op.parameters as Json[]) ?? [])];
        const query = parameters.filter((p) => p.in === "query");
        const requestBody = isObject(op.requestBody) ? op.requestBody : undefined;
        const list = byMethod.get(method) ?? [];
        list.push({
          key: `${method.toUpperCase()} ${template}`,
          match: templateRegex(template),
          catchAll: CATCH_ALL.test(template),
          literalSegments: template.split("/").filter((s) => s && !s.startsWith("{")).length,
          query: new Map(query.map((p) => [String(p.name), p.schema ?? {}])),
          pathParams: new Map(
            parameters.filter((p) => p.in === "path").map((p) => [String(p.name), p.schema ?? {}]),
          ),
          requiredQuery: query.filter((p) => p.required === true).map((p) => String(p.name)),
          ...(isObject(requestBody?.content) ? { request: requestBody.content as Record<string, Json> } : {}),
          responses: op.responses as Record<string, Json>,
        });
        byMethod.set(method, list);
      }
    }
    // A literal segment beats a parameter: /api/v2/agents/events is not /api/v2/agents/{agent_id}.
    for (const list of byMethod.values()) list.sort((a, b) => b.literalSegments - a.literalSegments);
    this.#operations = byMethod;
    return byMethod;
  }

  #record(key: string, status: string): void {
    const dir = process.env.EE_CONTRACT_COVERAGE;
    if (!dir) return;
    mkdirSync(dir, { recursive: true });
    appendFileSync(
      join(dir, `${process.pid}.jsonl`),
      `${JSON.stringify({ document: this.#file, operation: key, status })}\n`,
    );
  }
}

/**
 * A template as a pattern: `{name}` is one segment, except a template that is one parameter alone (the agent's
 * `/{workloadPath}`), which is every path outside the documented /api/ ones.
 */
const CATCH_ALL = /^\/\{[^}]+\}$/;

function templateRegex(template: string): RegExp {
  if (CATCH_ALL.test(template)) return /^\/(?!api(\/|$)).*$/;
  const parts = template
    .split(/(\{[^}]+\})/)
    .map((s, i) => (i % 2 ? `(?<${s.slice(1, -1)}>[^/]+)` : s.replace(/[.*+?^$()|[\]\\]/g, "\\$&")));
  return new RegExp(`^${parts.join("")}$`);
}

/** A query or path value as its schema's type (simple/form style: `5` is an integer where one is documented). */
function queryValue(schema: unknown, value: string): unknown {
  const types = isObject(schema) ? [schema.type].flat() : [];
  if ((types.includes("integer") || types.includes("number")) && /^-?\d+(\.\d+)?$/.test(value))
    return Number(value);
  if (types.includes("boolean") && (value === "true" || value === "false")) return value === "true";
  return value;
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ContractViolation(`${what}: the body is not JSON: ${text.slice(0, 200)}`);
  }
}

/** Passes an ndjson stream through unchanged, checking each complete line; a bad line errors the stream. */
function ndjsonChecker(check: (line: unknown) => void): TransformStream<Uint8Array, Uint8Array> {
  const decoder = new TextDecoder();
  let pending = "";
  return new TransformStream({
    transform(chunk, controller) {
      pending += decoder.decode(chunk, { stream: true });
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) if (line.trim()) check(parseJson(line, "ndjson line"));
      controller.enqueue(chunk);
    },
  });
}

/** The control plane's REST API, held to spec/control-plane.yaml. */
export const cpContract = new Contract("control-plane.yaml");
/** The agent's HTTP API, held to spec/agent-control.yaml. */
export const agentContract = new Contract("agent-control.yaml");
