// Loads the served REST contract (spec/control-plane.yaml) once, as the object GET /openapi.json returns.
import { readFileSync } from "node:fs";
import { parse } from "yaml";

let cached: unknown;

export function loadOpenApi(): unknown {
  cached ??= parse(readFileSync(new URL("./control-plane.yaml", import.meta.url), "utf8"));
  return cached;
}
