// The CP's compose summaries: the same hash and services as a fresh parse, whether or not the text was cached.
import test from "ava";
import { ComposeSummaries } from "../../actors/compose-summary.ts";
import { composeHash, parseCompose } from "../../compose/compose.ts";
import { ComposeError } from "../../spec/errors.ts";

const COMPOSE =
  "services:\n  web:\n    image: web:1\n  db:\n    image: db:1\n    volumes: ['/srv/db:/data']\n";

test("a summary is the hash, service names and unpinned images of the parsed text, cached or not", (t) => {
  const summaries = new ComposeSummaries();
  const project = parseCompose(COMPOSE, { bindAllowlist: ["/"] });
  const expected = {
    hash: composeHash(project),
    services: project.services.map((s) => s.name),
    unpinned: ["db (db:1)", "web (web:1)"],
  };
  const first = summaries.summarize(COMPOSE);
  t.is(first.hash, expected.hash);
  t.deepEqual(first, expected);
  t.deepEqual(summaries.summarize(COMPOSE), first);
});

test("a build context changes the hash even when the text is cached", (t) => {
  const summaries = new ComposeSummaries();
  const plain = summaries.summarize(COMPOSE).hash;
  const context = new Uint8Array([1, 2, 3]);
  const withContext = summaries.summarize(COMPOSE, context).hash;
  t.not(withContext, plain);
  t.is(withContext, composeHash(parseCompose(COMPOSE, { bindAllowlist: ["/"] }), context));
  t.is(summaries.summarize(COMPOSE).hash, plain);
});

test("an invalid text is refused every time, with its code", (t) => {
  const summaries = new ComposeSummaries();
  const bad = "services:\n  app:\n    image: a:1\n    privileged: true\n";
  for (let i = 0; i < 2; i++) {
    const err = t.throws(() => summaries.summarize(bad), { instanceOf: ComposeError });
    t.regex(err?.code ?? "", /^EE-COMPOSE-/);
  }
});

test("bind mounts are left to the agent: any host path passes at the CP", (t) => {
  const summaries = new ComposeSummaries();
  t.notThrows(() => summaries.summarize("services:\n  app:\n    image: a:1\n    volumes: ['/etc:/x']\n"));
});

test("images pinned by digest and built images are not listed as unpinned", (t) => {
  const pinned = `services:\n  web:\n    image: ghcr.io/org/web@sha256:${"a".repeat(64)}\n  app:\n    build: .\n`;
  t.deepEqual(new ComposeSummaries().summarize(pinned).unpinned, []);
});
