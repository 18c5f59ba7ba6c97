// spec/control-plane.yaml against the contract module, body by body: for every documented operation the request
// body schema and each JSON answer's schema must have the shape of the contract's zod schema
// (contract/rest-operations.ts, through z.toJSONSchema; test/helpers/schema-shape.ts says what a shape is), so a
// field added, dropped, renamed, made optional or retyped on one side only fails here, before any e2e test runs.
// Two cases alter a schema on purpose to show that such a drift is caught from either side.
import { readFileSync } from "node:fs";
import test from "ava";
import { parse } from "yaml";
import { z } from "zod";
import { deploymentBody } from "../../contract/rest-bodies.ts";
import { OPERATIONS, type OperationBodies } from "../../contract/rest-operations.ts";
import { deploymentSchema, errorSchema } from "../../contract/rest-responses.ts";
import { CONNECT_PATH } from "../../spec/protocol.ts";
import { type Shape, shapeDiff, shapeOf } from "../helpers/schema-shape.ts";

type Json = Record<string, unknown>;
const HTTP_METHODS = new Set(["get", "put", "post", "delete", "patch", "options", "head", "trace"]);
const DOC = parse(readFileSync(new URL("../../spec/control-plane.yaml", import.meta.url), "utf8")) as Json;

const zodShape = (schema: z.ZodType): Shape =>
  shapeOf(z.toJSONSchema(schema, { io: "output", unrepresentable: "any" }));
/** Request bodies are what a client sends: optional fields with defaults stay optional. */
const zodInputShape = (schema: z.ZodType): Shape =>
  shapeOf(z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }));

/** A request body or response object, its $ref (to components) followed. */
function deref(doc: Json, node: Json, kind: "requestBodies" | "responses"): Json {
  if (typeof node.$ref !== "string") return node;
  return ((doc.components as Json)[kind] as Json)[node.$ref.split("/").pop() as string] as Json;
}

const jsonSchemaOf = (content: unknown): unknown =>
  ((content as Json | undefined)?.["application/json"] as Json | undefined)?.schema;

/** Every difference between the document's operation and the contract's bodies for it. */
function drift(doc: Json, op: Json, bodies: OperationBodies | undefined): string[] {
  if (!bodies) return ["the operation is not in contract/rest-operations.ts"];
  const out: string[] = [];
  const documented = op.requestBody
    ? jsonSchemaOf(deref(doc, op.requestBody as Json, "requestBodies").content)
    : undefined;
  if (documented === undefined && bodies.request)
    out.push("request: a body in the contract, none documented");
  if (documented !== undefined && !bodies.request)
    out.push("request: a body documented, none in the contract");
  if (documented !== undefined && bodies.request)
    out.push(
      ...shapeDiff(
        shapeOf(documented, doc),
        zodInputShape(bodies.request),
        "the yaml",
        "the contract",
        "request",
      ),
    );
  const responses = op.responses as Record<string, Json>;
  for (const [status, response] of Object.entries(responses)) {
    const schema = jsonSchemaOf(deref(doc, response, "responses").content);
    if (schema === undefined) continue;
    const mine = bodies.responses[status] ?? (Number(status) >= 400 ? errorSchema : undefined);
    if (!mine) {
      out.push(`${status}: a JSON body documented, none in the contract`);
      continue;
    }
    out.push(...shapeDiff(shapeOf(schema, doc), zodShape(mine), "the yaml", "the contract", status));
  }
  for (const status of Object.keys(bodies.responses))
    if (jsonSchemaOf(deref(doc, responses[status] ?? {}, "responses").content) === undefined)
      out.push(`${status}: a JSON body in the contract, none documented`);
  return out;
}

const documented = Object.entries(DOC.paths as Record<string, Record<string, Json>>)
  .filter(([path]) => path !== CONNECT_PATH)
  .flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => HTTP_METHODS.has(method))
      .map(([method, op]) => ({ key: `${method.toUpperCase()} ${path}`, op })),
  );

for (const { key, op } of documented)
  test(`${key}: the documented bodies have the contract's shape`, (t) => {
    t.deepEqual(drift(DOC, op, OPERATIONS[key]), []);
  });

test("the contract has no operation the document lacks", (t) => {
  const keys = new Set(documented.map((d) => d.key));
  t.deepEqual(
    Object.keys(OPERATIONS).filter((k) => !keys.has(k)),
    [],
  );
  t.true(documented.length > 40, "the document's operations were read");
});

test("a field added to the contract's request schema only is caught", (t) => {
  const key = "POST /api/v2/deployments";
  const entry = OPERATIONS[key] as OperationBodies;
  const op = (DOC.paths as Record<string, Record<string, Json>>)["/api/v2/deployments"]?.post as Json;
  t.deepEqual(drift(DOC, op, entry), []);
  const altered = { ...entry, request: deploymentBody.extend({ priority: z.number().int().optional() }) };
  t.deepEqual(drift(DOC, op, altered), ["request.priority: only in the contract"]);
  const required = { ...entry, request: deploymentBody.required({ node_size: true }) };
  t.deepEqual(drift(DOC, op, required), [
    'request: required ["app"] in the yaml, ["app","node_size"] in the contract',
  ]);
});

test("a field added to the document's response schema only is caught", (t) => {
  const doc = structuredClone(DOC);
  const schemas = (doc.components as Json).schemas as Record<string, Json>;
  const deployment = schemas.Deployment as { properties: Json };
  deployment.properties.priority = { type: "integer" };
  const op = (doc.paths as Record<string, Record<string, Json>>)["/api/v2/deployments/{deployment_id}"]
    ?.get as Json;
  const entry = OPERATIONS["GET /api/v2/deployments/{deployment_id}"] as OperationBodies;
  t.is(entry.responses["200"], deploymentSchema);
  t.deepEqual(drift(doc, op, entry), ["200.priority: only in the yaml"]);
  // And a type changed on one side: the contract's status becomes a free string.
  const loose = { ...entry, responses: { "200": deploymentSchema.extend({ status: z.string() }) } };
  t.deepEqual(drift(DOC, op, loose), [
    '200.status: {"enum":["deploying","failed","healthy","pending","undeployed","undeploying"]} in the yaml, {"type":"string"} in the contract',
  ]);
});
