// Both OpenAPI documents, and the one a running CP serves at /openapi.json, validate against the OpenAPI 3.1
// schema with a maintained validator (@apidevtools/swagger-parser), and are written in block-style YAML: a flow
// mapping with prose in it is how an unquoted comma once split the 401 description into a stray key that every
// 401 of the served document inherited.
import { readFileSync } from "node:fs";
import SwaggerParser from "@apidevtools/swagger-parser";
import test from "ava";
import { isScalar, parse, parseDocument, visit } from "yaml";
import { startTestCp } from "../helpers/cluster.ts";

const DOCUMENTS = ["control-plane.yaml", "agent-control.yaml"];
const source = (file: string) => readFileSync(new URL(`../../spec/${file}`, import.meta.url), "utf8");

/** The validator dereferences what it is given in place, so it gets a copy. */
async function validationErrors(document: unknown): Promise<string | undefined> {
  try {
    await SwaggerParser.validate(structuredClone(document) as never);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

for (const file of DOCUMENTS) {
  test(`spec/${file} is a valid OpenAPI 3.1 document`, async (t) => {
    const doc = parse(source(file)) as { openapi: string };
    t.is(doc.openapi, "3.1.0");
    t.is(await validationErrors(doc), undefined);
  });

  test(`spec/${file} has no flow mappings, and flow sequences hold only bare words`, (t) => {
    const text = source(file);
    const found: string[] = [];
    const line = (offset: number | undefined) => text.slice(0, offset ?? 0).split("\n").length;
    visit(parseDocument(text), {
      Map(_, node) {
        if (node.flow && node.items.length > 0) found.push(`flow mapping at line ${line(node.range?.[0])}`);
      },
      Seq(_, node) {
        if (!node.flow) return;
        const prose = node.items.some((i) => !isScalar(i) || /[\s,:#{}[\]]/.test(String(i.value ?? "")));
        if (prose) found.push(`flow sequence with more than words at line ${line(node.range?.[0])}`);
      },
    });
    t.deepEqual(found, []);
  });
}

test("the validator refuses a document whose description comma became a stray key", async (t) => {
  // The 401 response as it was served: the flow mapping parsed the comma as the end of the description.
  const broken = parse(source("control-plane.yaml")) as {
    components: { responses: Record<string, Record<string, unknown>> };
  };
  broken.components.responses.Unauthorized = {
    ...parse("{ description: Missing or invalid token (EE-AUTH-MISSING, EE-AUTH-INVALID) }"),
    content: broken.components.responses.Unauthorized?.content,
  };
  t.regex((await validationErrors(broken)) ?? "", /responses\/401 must NOT have unevaluated properties/);
});

test("GET /openapi.json serves a valid OpenAPI 3.1 document, the one in spec/control-plane.yaml", async (t) => {
  const { api } = await startTestCp(t);
  const served = await api("/openapi.json", { token: null });
  t.is(served.status, 200);
  t.deepEqual(served.body, parse(source("control-plane.yaml")));
  t.is(await validationErrors(served.body), undefined);
});
