// The import rules ARCHITECTURE.md states, read from its tables and checked over a map of source files: which
// top-level folders each folder may import, whether it may use node: modules, and which files may be over 400
// lines (with a reason). Pure over its inputs, so a test can feed it a synthetic file map.
import { dirname, join, normalize } from "node:path";

export interface FolderRule {
  folder: string;
  /** Top-level folders it may import besides itself. */
  mayImport: Set<string>;
  nodeBuiltins: boolean;
}

export interface Violation {
  file: string;
  /** The top-level folder imported (or "node:"), and the specifier as written. */
  target: string;
  specifier: string;
}

/** The rows of the first markdown table after `heading`, as cells without their pipes. */
export function tableAfter(markdown: string, heading: string): string[][] {
  const at = markdown.indexOf(`\n${heading}\n`);
  if (at < 0) throw new Error(`ARCHITECTURE.md has no "${heading}" section`);
  const lines = markdown.slice(at + heading.length + 2).split("\n");
  const start = lines.findIndex((l) => l.startsWith("|"));
  const rows: string[][] = [];
  for (const line of lines.slice(start)) {
    if (!line.startsWith("|")) break;
    const cells = line
      .slice(1, -1)
      .split("|")
      .map((c) => c.trim());
    if (cells.every((c) => /^-+$/.test(c))) continue;
    rows.push(cells);
  }
  return rows.slice(1);
}

const ticked = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);

/** `| \`folder/\` | \`a/\`, \`b/\` | yes/no | why |` rows: the folder, what it may import, node: modules. */
export function parseRules(markdown: string): Map<string, FolderRule> {
  const rules = new Map<string, FolderRule>();
  for (const [folder, may, node] of tableAfter(markdown, "## Import rules")) {
    const name = ticked(folder ?? "")[0]?.replace(/\/$/, "");
    if (!name) throw new Error(`import rule row without a folder: ${folder}`);
    const mayImport = new Set(ticked(may ?? "").map((f) => f.replace(/\/$/, "")));
    rules.set(name, { folder: name, mayImport, nodeBuiltins: (node ?? "").startsWith("yes") });
  }
  return rules;
}

/** `| \`path\` | reason |` rows of the files allowed over the line limit. */
export function parseLongFiles(markdown: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const [path, reason] of tableAfter(markdown, "## Files over 400 lines")) {
    const p = ticked(path ?? "")[0];
    if (p && reason) out.set(p, reason);
  }
  return out;
}

/**
 * The source with comments and template literals blanked (so an import written in a comment or in generated code
 * is not one), quoted strings kept (they hold the specifiers).
 */
function code(source: string): string {
  let out = "";
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    const next = source[i + 1];
    if (c === "/" && next === "/") {
      while (i < source.length && source[i] !== "\n") i++;
    } else if (c === "/" && next === "*") {
      const end = source.indexOf("*/", i + 2);
      i = end < 0 ? source.length : end + 2;
      out += " ";
    } else if (c === "`") {
      i++;
      while (i < source.length && source[i] !== "`") i += source[i] === "\\" ? 2 : 1;
      i++;
      out += '""';
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < source.length && source[j] !== c && source[j] !== "\n") j += source[j] === "\\" ? 2 : 1;
      out += source.slice(i, j + 1);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

const STATIC = /(?:^|[;}\n])\s*(?:import|export)\b[^;"'`]*?\bfrom\s*["']([^"'\n]+)["']/g;
const BARE = /(?:^|[;}\n])\s*import\s*["']([^"'\n]+)["']/g;
const DYNAMIC = /\bimport\s*\(\s*["']([^"'\n]+)["']\s*\)/g;

/** Every module specifier a file imports: static imports and re-exports (type-only too), bare and `import()`. */
export function importsOf(source: string): string[] {
  const text = code(source);
  return [STATIC, BARE, DYNAMIC].flatMap((re) => [...text.matchAll(re)].map((m) => m[1]!));
}

export function topFolder(file: string): string {
  const i = file.indexOf("/");
  return i < 0 ? "." : file.slice(0, i);
}

/** Imports each file makes that its folder's rule does not allow (a folder without a rule is one violation). */
export function violations(files: ReadonlyMap<string, string>, rules: ReadonlyMap<string, FolderRule>) {
  const out: Violation[] = [];
  for (const [file, source] of files) {
    const from = topFolder(file);
    const rule = rules.get(from);
    if (!rule) {
      out.push({ file, target: "(no rule for this folder)", specifier: "" });
      continue;
    }
    for (const specifier of importsOf(source)) {
      if (specifier.startsWith("node:")) {
        if (!rule.nodeBuiltins) out.push({ file, target: "node:", specifier });
        continue;
      }
      if (!specifier.startsWith(".")) continue;
      const target = topFolder(normalize(join(dirname(file), specifier)));
      if (target !== from && !rule.mayImport.has(target)) out.push({ file, target, specifier });
    }
  }
  return out;
}

export const MAX_LINES = 400;

export function longFiles(files: ReadonlyMap<string, string>): { file: string; lines: number }[] {
  const out: { file: string; lines: number }[] = [];
  for (const [file, source] of files) {
    const lines = source.split("\n").length - (source.endsWith("\n") ? 1 : 0);
    if (lines > MAX_LINES) out.push({ file, lines });
  }
  return out;
}
