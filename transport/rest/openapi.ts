// Loads the served REST contract (spec/control-plane.yaml) once, as the object GET /openapi.json returns. File I/O,
// so it lives with the REST transport that serves it; spec/ keeps the document. Imports node:fs and yaml only.
import { readFileSync } from "node:fs";
import { parse } from "yaml";

let cached: unknown;

export function loadOpenApi(): unknown {
  cached ??= parse(readFileSync(new URL("../../spec/control-plane.yaml", import.meta.url), "utf8"));
  return cached;
}
