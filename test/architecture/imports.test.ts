// The import rules and the file-size limit of ARCHITECTURE.md hold over every non-test .ts file: the rules are
// read from its "Import rules" table, the allowed long files from "Files over 400 lines". A wrong arrow fails here,
// which the synthetic file maps below prove; PENDING lists today's known wrong arrows (printed, to be removed).

import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import test from "ava";
import { longFiles, MAX_LINES, parseLongFiles, parseRules, topFolder, violations } from "./import-rules.ts";

const root = new URL("../../", import.meta.url);
const architecture = readFileSync(new URL("ARCHITECTURE.md", root), "utf8");
const rules = parseRules(architecture);

/** Every tracked or new non-test .ts file outside test/ (git's view, so node_modules and dist never count). */
function sourceFiles(): Map<string, string> {
  const listed = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "*.ts"], {
    cwd: root,
    encoding: "utf8",
  });
  const files = new Map<string, string>();
  for (const file of listed.split("\n")) {
    if (!file || file.startsWith("test/") || file.endsWith(".test.ts")) continue;
    try {
      files.set(file, readFileSync(new URL(file, root), "utf8"));
    } catch {
      // Listed by git but deleted in the working tree.
    }
  }
  return files;
}

/**
 * Known wrong arrows, `file -> folder`, being removed by issue 18's contract module (REST bodies and port types out
 * of actors/ and transport/, the constants eectl reads). Remove a line when its arrow goes; tighten to empty.
 */
const PENDING = new Set<string>([]);

test("ARCHITECTURE.md's import table states the layering rules of issue 18", (t) => {
  const may = (folder: string) => [...(rules.get(folder)?.mayImport ?? [])];
  t.deepEqual(may("machines"), ["spec"], "machines/ imports no other layer");
  t.false(rules.get("machines")?.nodeBuiltins, "machines/ does no I/O");
  for (const forbidden of ["transport", "agent", "cp", "cli"]) t.false(may("actors").includes(forbidden));
  for (const forbidden of ["actors", "cp", "cli"]) t.false(may("agent").includes(forbidden));
  for (const folder of ["transport", "cli"])
    for (const forbidden of ["actors", "machines"]) t.false(may(folder).includes(forbidden));
  for (const [folder, rule] of rules)
    if (folder !== "cli") t.false(rule.mayImport.has("cp"), `${folder}/ may not import the composition root`);
});

test("every non-test source file imports only what its folder's row allows", (t) => {
  const found = violations(sourceFiles(), rules);
  const arrows = new Set(found.map((v) => `${v.file} -> ${v.target}`));
  const wrong = found.filter((v) => !PENDING.has(`${v.file} -> ${v.target}`));
  t.deepEqual(
    wrong.map((v) => `${v.file} imports ${v.specifier} (${v.target}/)`),
    [],
    "arrows ARCHITECTURE.md's import table does not allow",
  );
  const pending = [...PENDING].filter((a) => arrows.has(a));
  const gone = [...PENDING].filter((a) => !arrows.has(a));
  t.log(`${pending.length} pending arrows still to remove:\n  ${pending.join("\n  ")}`);
  if (gone.length)
    t.log(`pending arrows that no longer exist (remove them from PENDING):\n  ${gone.join("\n  ")}`);
});

test("no non-test source file is over 400 lines unless ARCHITECTURE.md says why", (t) => {
  const allowed = parseLongFiles(architecture);
  const long = longFiles(sourceFiles());
  t.deepEqual(
    long.filter((f) => !allowed.has(f.file)).map((f) => `${f.file}: ${f.lines} lines`),
    [],
    `files over ${MAX_LINES} lines without a reason in ARCHITECTURE.md`,
  );
  const longNames = new Set(long.map((f) => f.file));
  const stale = [...allowed.keys()].filter((f) => !longNames.has(f));
  if (stale.length)
    t.log(`listed but no longer over ${MAX_LINES} lines (drop the row):\n  ${stale.join("\n  ")}`);
});

test("a deliberately wrong import fails the check, whatever form it is written in", (t) => {
  const files = new Map([
    [
      "machines/pure.ts",
      'import { setup } from "xstate";\nimport type { ErrorCode } from "../spec/errors.ts";\n',
    ],
    ["machines/io.ts", 'import { readFileSync } from "node:fs";\n'],
    ["actors/frames.ts", 'import { encodeFrame } from "../transport/frame.ts";\n'],
    ["actors/ok.ts", '// import { x } from "../transport/frame.ts";\nconst s = `import "../cp/x.ts"`;\n'],
    ["agent/reach.ts", 'export {\n  Supervisor,\n} from "../actors/supervisor.ts";\n'],
    ["cli/lazy.ts", 'const m = await import("../machines/deployment.ts");\n'],
    ["transport/side.ts", 'import "../actors/store/db.ts";\n'],
    ["newfolder/x.ts", "export const x = 1;\n"],
  ]);
  t.deepEqual(
    violations(files, rules).map((v) => `${v.file} -> ${v.target}`),
    [
      "machines/io.ts -> node:",
      "actors/frames.ts -> transport",
      "agent/reach.ts -> actors",
      "cli/lazy.ts -> machines",
      "transport/side.ts -> actors",
      "newfolder/x.ts -> (no rule for this folder)",
    ],
  );
  t.is(topFolder("cp/control-plane.ts"), "cp");
});

test("a file over the limit fails unless listed", (t) => {
  const long = `${"x\n".repeat(MAX_LINES + 1)}`;
  t.deepEqual(
    longFiles(
      new Map([
        ["cp/big.ts", long],
        ["cp/small.ts", "x\n".repeat(MAX_LINES)],
      ]),
    ),
    [{ file: "cp/big.ts", lines: MAX_LINES + 1 }],
  );
});
