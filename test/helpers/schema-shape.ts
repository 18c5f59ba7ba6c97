// The shape of a JSON Schema, for holding two documents of one contract to each other (the OpenAPI document and
// the contract module's zod schemas, through z.toJSONSchema): which JSON type a value takes and whether null too,
// an object's properties and which are required, an array's items (and fixed length), enum and const values,
// and the alternatives of a union. Constraints that keep a shape (patterns, lengths, bounds, formats, defaults,
// descriptions) are left out, and so is `additionalProperties: false` beside listed properties
// (test/helpers/contract.ts holds every listed object closed anyway). Local $refs are inlined, allOf merged.
import { isDeepStrictEqual } from "node:util";
import { inlineRefs } from "./contract.ts";

type Json = Record<string, unknown>;

export interface Shape {
  /** Any JSON value: a schema that says nothing of its shape. */
  any?: true;
  enum?: unknown[];
  type?: string;
  nullable?: true;
  properties?: Record<string, Shape>;
  required?: string[];
  /** additionalProperties, when it is a schema (a map). */
  values?: Shape;
  items?: Shape | null;
  prefixItems?: Shape[];
  length?: number;
  anyOf?: Shape[];
}

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const key = (s: Shape) => JSON.stringify(s);
const sorted = (xs: Shape[]) => [...xs].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
const isNull = (s: Shape) => s.enum?.length === 1 && s.enum[0] === null;

/** The shape of `schema`, a node of `doc` (whose local $refs resolve). */
export function shapeOf(schema: unknown, doc: Json = {}): Shape {
  return shape(inlineRefs(doc, schema));
}

function shape(s: unknown): Shape {
  if (!isObject(s)) return { any: true };
  if (Array.isArray(s.allOf)) {
    const { allOf, ...rest } = s;
    const own = Object.keys(rest).some((k) => SHAPE_KEYS.has(k)) ? [shape(rest)] : [];
    return merge([...(allOf as unknown[]).map(shape), ...own]);
  }
  const alts = (s.anyOf ?? s.oneOf) as unknown[] | undefined;
  if (Array.isArray(alts)) return union(alts.map(shape));
  if ("const" in s) return { enum: [s.const] };
  if (Array.isArray(s.enum)) return { enum: [...s.enum].sort() };
  const types = Array.isArray(s.type) ? (s.type as string[]) : typeof s.type === "string" ? [s.type] : [];
  const nullable = types.includes("null") || s.nullable === true;
  const real = types.filter((t) => t !== "null");
  if (real.length === 0) {
    if (isObject(s.properties) || isObject(s.additionalProperties) || Array.isArray(s.required))
      real.push("object");
    else if (s.items !== undefined || Array.isArray(s.prefixItems)) real.push("array");
    else return nullable ? { enum: [null] } : { any: true };
  }
  if (real.length > 1) return union(real.map((t) => shape({ ...s, type: nullable ? [t, "null"] : t })));
  const type = real[0] as string;
  const out: Shape = { type };
  if (type === "object") {
    out.properties = {};
    for (const [k, v] of Object.entries(isObject(s.properties) ? s.properties : {}))
      out.properties[k] = shape(v);
    out.required = Array.isArray(s.required) ? [...(s.required as string[])].sort() : [];
    // Required but not described is a property of any shape.
    for (const r of out.required) out.properties[r] ??= { any: true };
    // A map's values; `additionalProperties: {}` (any value) says no more than leaving it out.
    const values = isObject(s.additionalProperties) ? shape(s.additionalProperties) : undefined;
    if (values && !values.any) out.values = values;
  } else if (type === "array") {
    const prefix = Array.isArray(s.prefixItems) ? (s.prefixItems as unknown[]).map(shape) : undefined;
    const first = prefix?.[0];
    if (prefix && first && s.items === false && prefix.every((p) => isDeepStrictEqual(p, first))) {
      // A tuple of one item shape is an array of that length: [x, x, x, x] is items x with min = max = 4.
      out.items = first;
      out.length = prefix.length;
    } else {
      out.items = s.items === false || s.items === undefined ? null : shape(s.items);
      if (prefix) out.prefixItems = prefix;
      else if (typeof s.minItems === "number" && s.minItems === s.maxItems) out.length = s.minItems;
    }
  }
  if (nullable) out.nullable = true;
  return out;
}

const SHAPE_KEYS = new Set([
  "type",
  "properties",
  "required",
  "items",
  "prefixItems",
  "enum",
  "const",
  "anyOf",
  "oneOf",
]);

/** A union: nested unions flattened, a null alternative made nullability, duplicates dropped, one unwrapped. */
function union(alts: Shape[]): Shape {
  const flat = alts.flatMap((a) => a.anyOf ?? [a]);
  const hasNull = flat.some(isNull);
  let rest = flat.filter((a) => !isNull(a));
  if (rest.length === 0) return { enum: [null] };
  if (hasNull)
    rest = rest.map((a) =>
      a.enum ? { enum: [...a.enum, null].sort() } : a.any ? a : { ...a, nullable: true },
    );
  const unique = rest.filter((a, i) => rest.findIndex((b) => isDeepStrictEqual(a, b)) === i);
  return unique.length === 1 ? (unique[0] as Shape) : { anyOf: sorted(unique) };
}

/** allOf: objects merge property by property (a property in two branches merges too); an enum narrows a type. */
function merge(parts: Shape[]): Shape {
  const real = parts.filter((p) => !p.any);
  if (real.length <= 1) return real[0] ?? { any: true };
  if (real.every((p) => p.type === "object")) {
    const properties: Record<string, Shape> = {};
    const required = new Set<string>();
    for (const o of real) {
      for (const [k, v] of Object.entries(o.properties ?? {}))
        properties[k] = properties[k] ? merge([properties[k], v]) : v;
      for (const r of o.required ?? []) required.add(r);
    }
    return { type: "object", properties, required: [...required].sort() };
  }
  const enums = real.filter((p) => p.enum);
  if (enums.length === 1) return enums[0] as Shape;
  return { anyOf: sorted(real) };
}

/** Where shape `a` (named `an`) and shape `b` (named `bn`) differ, one line per difference; empty when alike. */
export function shapeDiff(a: Shape, b: Shape, an = "first", bn = "second", at = "$"): string[] {
  if (isDeepStrictEqual(a, b)) return [];
  if (a.type === "object" && b.type === "object") {
    const out: string[] = [];
    const ap = a.properties ?? {};
    const bp = b.properties ?? {};
    for (const k of Object.keys(ap)) if (!(k in bp)) out.push(`${at}.${k}: only in ${an}`);
    for (const k of Object.keys(bp)) if (!(k in ap)) out.push(`${at}.${k}: only in ${bn}`);
    for (const k of Object.keys(ap))
      if (k in bp) out.push(...shapeDiff(ap[k] as Shape, bp[k] as Shape, an, bn, `${at}.${k}`));
    if (!isDeepStrictEqual(a.required, b.required))
      out.push(
        `${at}: required ${JSON.stringify(a.required)} in ${an}, ${JSON.stringify(b.required)} in ${bn}`,
      );
    if (a.nullable !== b.nullable)
      out.push(`${at}: nullable ${!!a.nullable} in ${an}, ${!!b.nullable} in ${bn}`);
    if (!isDeepStrictEqual(a.values, b.values))
      out.push(`${at}: map values ${key(a.values ?? {})} in ${an}, ${key(b.values ?? {})} in ${bn}`);
    return out;
  }
  const { items: ai, ...ar } = a;
  const { items: bi, ...br } = b;
  if (a.type === "array" && b.type === "array" && ai && bi && isDeepStrictEqual(ar, br))
    return shapeDiff(ai, bi, an, bn, `${at}[]`);
  return [`${at}: ${key(a)} in ${an}, ${key(b)} in ${bn}`];
}
