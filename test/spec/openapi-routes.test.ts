// spec/control-plane.yaml must match the REST routes: the document parses and its $refs resolve, the routes
// createRestApp registers (with every optional port mounted) are exactly the documented operations, and a real
// control plane serves every documented operation with a documented status. The last check is what ties the
// route list to what is served: a route the CP stopped mounting fails there, not only in review.
import { readFileSync } from "node:fs";
import test from "ava";
import WebSocket from "ws";
import { parse } from "yaml";
import { silentLogger } from "../../lib/log.ts";
import { CONNECT_PATH } from "../../spec/protocol.ts";
import { createRestApp } from "../../transport/rest/app.ts";
import { startTestCp } from "../helpers/cluster.ts";
import { cpContract } from "../helpers/contract.ts";

interface Operation {
  parameters?: Json[];
  requestBody?: Json;
  responses: Record<string, Json>;
  security?: unknown[];
}
type Json = Record<string, unknown>;
interface Doc {
  openapi: string;
  security?: unknown[];
  paths: Record<string, Record<string, Operation>>;
}

const HTTP_METHODS = new Set(["get", "put", "post", "delete", "patch", "options", "head", "trace"]);
const source = readFileSync(new URL("../../spec/control-plane.yaml", import.meta.url), "utf8");
const doc = parse(source) as Doc;

/** Every operation of the document, except the agent WebSocket: an upgrade handled beside the router. */
const documented = Object.entries(doc.paths)
  .filter(([path]) => path !== CONNECT_PATH)
  .flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => HTTP_METHODS.has(method))
      .map(([method, op]) => ({ method: method.toUpperCase(), path, op })),
  );

/** Path parameters compare by position only: the router's `:id` is the document's `{deployment_id}`. */
const normalise = (path: string) => path.replace(/\{[^}/]+\}|:[A-Za-z0-9_]+/g, "{}");

function resolveRef(ref: string): unknown {
  if (!ref.startsWith("#/")) return undefined;
  let node: unknown = doc;
  for (const raw of ref.slice(2).split("/")) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (typeof node !== "object" || node === null || !(key in node)) return undefined;
    node = (node as Json)[key];
  }
  return node;
}

const deref = (node: Json): Json => (typeof node.$ref === "string" ? (resolveRef(node.$ref) as Json) : node);

function refsIn(node: unknown, at: string, out: { at: string; ref: unknown }[]): void {
  if (typeof node !== "object" || node === null) return;
  for (const [k, v] of Object.entries(node)) {
    if (k === "$ref") out.push({ at, ref: v });
    else refsIn(v, `${at}/${k}`, out);
  }
}

/** The routes a fully mounted REST app registers, as `METHOD /path` (HEAD is Koa's automatic twin of GET). */
function registeredRoutes(): string[] {
  // Routes are registered when the ports are given; listing them never calls a port.
  const unused = <T extends object>(name: string) =>
    new Proxy({} as T, {
      get: (_, key) => {
        throw new Error(`${name}.${String(key)} is not used while listing routes`);
      },
    });
  const app = createRestApp({
    view: unused("view"),
    adminTokenDigest: Buffer.alloc(32),
    openapi: () => doc,
    log: silentLogger,
    measurements: unused("measurements"),
    deployments: unused("deployments"),
    agentReads: unused("agentReads"),
    inspection: unused("inspection"),
    billing: { ledger: unused("ledger"), account: unused("account"), webhookSecret: null },
    identity: unused("identity"),
    enrollments: unused("enrollments"),
    capacity: unused("capacity"),
  });
  const out: string[] = [];
  for (const mw of app.middleware as { router?: { stack: { methods: string[]; path: unknown }[] } }[]) {
    for (const layer of mw.router?.stack ?? []) {
      if (typeof layer.path !== "string") continue;
      for (const method of layer.methods)
        if (method !== "HEAD") out.push(`${method} ${normalise(layer.path)}`);
    }
  }
  return out.sort();
}

test("the document parses, is OpenAPI 3.1 and every $ref resolves", (t) => {
  t.is(doc.openapi, "3.1.0");
  const refs: { at: string; ref: unknown }[] = [];
  refsIn(doc, "#", refs);
  t.true(refs.length > 50, "the document uses shared components");
  const broken = refs.filter(({ ref }) => typeof ref !== "string" || resolveRef(ref) === undefined);
  t.deepEqual(broken, []);
});

test("every path template names its path parameters, and only those", (t) => {
  const mismatched: string[] = [];
  for (const { method, path, op } of documented) {
    const inPath = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
    const declared = (op.parameters ?? [])
      .map(deref)
      .filter((p) => p.in === "path" && p.required === true)
      .map((p) => p.name as string)
      .sort();
    if (inPath.join() !== declared.join()) mismatched.push(`${method} ${path}: ${inPath} vs ${declared}`);
  }
  t.deepEqual(mismatched, []);
});

test("the routes the REST app registers are exactly the documented operations", (t) => {
  const registered = registeredRoutes();
  t.true(registered.includes("POST /api/v2/deployments"), "the deployment routes are mounted");
  const docKeys = documented.map(({ method, path }) => `${method} ${normalise(path)}`).sort();
  t.deepEqual(
    registered.filter((r) => !docKeys.includes(r)),
    [],
    "registered but not documented",
  );
  t.deepEqual(
    docKeys.filter((d) => !registered.includes(d)),
    [],
    "documented but not registered",
  );
});

interface Answer {
  status: number;
  type: string;
  error?: { code: string; message: string };
}

test("a running control plane serves every documented operation with a documented status", async (t) => {
  const { cp, api } = await startTestCp(t);
  const served = await api("/openapi.json", { token: null });
  t.deepEqual(served.body, doc, "GET /openapi.json serves spec/control-plane.yaml");

  const call = async (method: string, path: string, token: boolean, body?: string): Promise<Answer> => {
    const headers: Record<string, string> = token
      ? { authorization: "Bearer test-admin-token-0123456789" }
      : {};
    if (body !== undefined) headers["content-type"] = "application/json";
    // Placeholder ids and empty bodies are off the document on purpose; the answers are held to it.
    const res = await cpContract.fetch(`${cp.url}${path}`, {
      method,
      headers,
      badRequest: true,
      ...(body !== undefined ? { body } : {}),
    });
    const type = (res.headers.get("content-type") ?? "").split(";")[0]!.trim();
    if (type !== "application/json") {
      await res.body?.cancel(); // event and log streams never end on their own
      return { status: res.status, type };
    }
    const json = (await res.json()) as { error?: Answer["error"] };
    return { status: res.status, type, ...(json.error ? { error: json.error } : {}) };
  };
  // The error mapper's answers when no route matched (404) or the method is not routed (405 → 400).
  const isRouteMiss = (a: Answer) =>
    (a.status === 404 && a.error?.message.startsWith("no route for") === true) ||
    (a.status === 400 && / is not allowed on /.test(a.error?.message ?? ""));
  t.true(isRouteMiss(await call("GET", "/api/v2/nothing-here", true)), "recognises an unrouted path");
  t.true(isRouteMiss(await call("PUT", "/healthz", false)), "recognises an unrouted method");

  for (const { method, path, op } of documented) {
    const url = path.replace(/\{[^}]+\}/g, "1");
    const body = op.requestBody ? "{}" : undefined;
    const secured = (op.security ?? doc.security ?? []).length > 0;
    const name = `${method} ${path}`;
    const a = await call(method, url, secured, body);
    t.false(isRouteMiss(a), `${name} is routed`);
    t.true(a.status in op.responses, `${name} answered ${a.status}, which is not documented`);
    const content = deref(op.responses[a.status] ?? {}).content as Json | undefined;
    if (content && a.status < 300) {
      const types = Object.keys(content).map((k) => k.split(";")[0]!.trim());
      t.true(types.includes(a.type), `${name} answered ${a.type}, documented ${types}`);
    }
    if (secured) {
      const anonymous = await call(method, url, false, body);
      t.is(anonymous.status, 401, `${name} needs the token`);
      t.true("401" in op.responses, `${name} documents 401`);
    }
  }
});

test("the documented agent WebSocket upgrades", async (t) => {
  const { cp } = await startTestCp(t);
  t.truthy(doc.paths[CONNECT_PATH]?.get?.responses["101"]);
  const ws = new WebSocket(`${cp.wsUrl}${CONNECT_PATH}`);
  const opened = await new Promise<boolean>((resolve) => {
    ws.once("open", () => resolve(true));
    ws.once("error", () => resolve(false));
  });
  t.true(opened);
  await new Promise<void>((resolve) => {
    ws.once("close", () => resolve());
    ws.close();
  });
});
