// lib/log.ts and lib/held-output.ts: readable lines on a terminal, JSON lines otherwise, secrets redacted either
// way, and npm start's held output that keeps log lines until its banner is out.
import test from "ava";
import { HeldOutput } from "../../lib/held-output.ts";
import { createLogger, type LogOutput, logFormat } from "../../lib/log.ts";

function capture(isTTY: boolean): LogOutput & { lines: string[] } {
  const lines: string[] = [];
  return { isTTY, lines, write: (line: string) => void lines.push(line) };
}

test("pretty on a terminal, JSON otherwise; EE_LOG_FORMAT overrides either way", (t) => {
  t.is(logFormat(true, {}), "pretty");
  t.is(logFormat(false, {}), "json");
  t.is(logFormat(true, { EE_LOG_FORMAT: "json" }), "json");
  t.is(logFormat(false, { EE_LOG_FORMAT: "pretty" }), "pretty");
  t.is(logFormat(false, { EE_LOG_FORMAT: "fancy" }), "json", "an unknown format falls back to the default");
});

test("on a terminal a log call is one readable line with its fields; secrets are redacted", (t) => {
  const out = capture(true);
  const log = createLogger("control-plane", "info", out);
  log.info({ agent_id: "agt_1", vm_name: "vm-1", body: { token: "s3cret" } }, "agent registered");
  log.debug({ agent_id: "agt_1" }, "not at info");
  t.is(out.lines.length, 1);
  const line = out.lines[0]!;
  t.false(line.trimStart().startsWith("{"), line);
  t.regex(line, /INFO.*\(control-plane\).*agent registered/);
  t.regex(line, /"agent_id":"agt_1"/);
  t.false(line.includes("s3cret"));
  t.regex(line, /\[redacted\]/);
  t.true(line.endsWith("\n"));
});

test("elsewhere a log call is one JSON line", (t) => {
  const out = capture(false);
  const log = createLogger("agent", "info", out);
  log.warn({ req: { secret: "s3cret" }, n: 1 }, "link down");
  const rec = JSON.parse(out.lines[0]!) as Record<string, unknown>;
  t.like(rec, { level: 40, name: "agent", msg: "link down", n: 1, req: { secret: "[redacted]" } });
});

test("held output keeps lines until released, then passes them through in order", (t) => {
  const written: string[] = [];
  const target = { isTTY: true, write: (s: string) => written.push(s) } as unknown as NodeJS.WritableStream;
  const held = new HeldOutput(target);
  t.true(held.isTTY);
  held.write("a\n");
  held.write("b\n");
  t.deepEqual(written, []);
  held.release();
  held.write("c\n");
  held.release();
  t.deepEqual(written, ["a\nb\n", "c\n"]);
});
