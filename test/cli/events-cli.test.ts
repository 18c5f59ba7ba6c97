// `eectl events` against a real control plane with real agents: the log holds each agent's registration, the
// filters and --after select from it, and --follow prints a new registration as it happens, then ends with exit 0
// on SIGINT. eectl runs as a user would (bin/eectl.js); the CP and agents run in this process.
import test from "ava";
import type { EventRecord } from "../../actors/store/event-log.ts";
import { eectl, eectlRunning } from "../helpers/cli.ts";
import { ADMIN_TOKEN, agentConfig, startTestAgent, startTestCp, waitFor } from "../helpers/cluster.ts";

async function cluster(t: Parameters<typeof startTestCp>[0]) {
  const { cp, devDir } = await startTestCp(t);
  const agent = await startTestAgent(t, agentConfig(t, cp.wsUrl, devDir, { vm_name: "vm-events-1" }));
  await waitFor("the agent to register", () => cp.index.get(agent.agentId)?.state === "registered");
  const auth = ["--cp", cp.url, "--token", ADMIN_TOKEN];
  return { cp, devDir, agent, auth };
}

const lines = (out: string) => out.split("\n").filter(Boolean);
const parse = (out: string) => lines(out).map((l) => JSON.parse(l) as EventRecord);

test("events --json lists the agent's registration; --agent, --kind and --after select", async (t) => {
  const { agent, auth } = await cluster(t);
  const all = await eectl(["events", ...auth, "--json"]);
  t.is(all.code, 0, all.stderr);
  const events = parse(all.stdout);
  const registered = events.find((e) => e.kind === "agent.registered" && e.agent_id === agent.agentId);
  t.truthy(registered, all.stdout);
  t.is(registered!.data.vm_name, "vm-events-1");
  t.deepEqual(
    events.map((e) => e.id),
    [...events.map((e) => e.id)].sort((a, b) => a - b),
    "in sequence order",
  );

  const mine = parse((await eectl(["events", ...auth, "--json", "--agent", agent.agentId])).stdout);
  t.true(mine.length > 0);
  t.true(mine.every((e) => e.agent_id === agent.agentId));
  const kind = parse((await eectl(["events", ...auth, "--json", "--kind", "agent.registered"])).stdout);
  t.deepEqual(
    kind.map((e) => e.id),
    [registered!.id],
  );
  const after = parse((await eectl(["events", ...auth, "--json", "--after", String(registered!.id)])).stdout);
  t.deepEqual(
    after.map((e) => e.id),
    events.filter((e) => e.id > registered!.id).map((e) => e.id),
  );

  const human = await eectl(["events", ...auth, "--kind", "agent.registered"]);
  t.regex(
    human.stdout,
    new RegExp(
      `^\\d{4}-\\d\\d-\\d\\dT\\S+Z #${registered!.id} agent\\.registered ${agent.agentId} .*vm_name=vm-events-1`,
      "m",
    ),
  );
});

test("events --follow prints a new registration as it happens and exits 0 on SIGINT", async (t) => {
  const { cp, devDir, agent, auth } = await cluster(t);
  const follow = eectlRunning(t, ["events", ...auth, "--follow", "--kind", "agent.registered"]);
  // The recent registration comes first: then the stream is past its catch-up and live.
  await waitFor(
    "the recent registration",
    () => follow.stdout().includes(agent.agentId) || undefined,
    30_000,
  );
  const second = await startTestAgent(t, agentConfig(t, cp.wsUrl, devDir, { vm_name: "vm-events-2" }));
  await waitFor(
    "the new registration to be printed",
    () => lines(follow.stdout()).find((l) => l.includes(`agent.registered ${second.agentId}`)),
    30_000,
  );
  t.is(lines(follow.stdout()).length, 2, follow.stdout());
  follow.kill("SIGINT");
  t.is(await follow.exited, 0);
});

test("events --follow --after SEQ --json replays what came after SEQ once, then what is new", async (t) => {
  const { cp, devDir, auth } = await cluster(t);
  const cpStarted = cp.events.list({ kind: "cp.started" })[0]!;
  const follow = eectlRunning(t, ["events", ...auth, "--follow", "--json", "--after", String(cpStarted.id)]);
  const before = cp.events.list({ after: cpStarted.id, limit: 1000 });
  await waitFor("the replay", () => parse(follow.stdout()).length >= before.length || undefined, 30_000);
  await startTestAgent(t, agentConfig(t, cp.wsUrl, devDir, { vm_name: "vm-events-3" }));
  await waitFor(
    "the new registration",
    () => parse(follow.stdout()).some((e) => e.data.vm_name === "vm-events-3") || undefined,
    30_000,
  );
  const ids = parse(follow.stdout()).map((e) => e.id);
  t.deepEqual(
    ids,
    cp.events
      .list({ after: cpStarted.id, limit: 1000 })
      .filter((e) => e.id <= ids.at(-1)!)
      .map((e) => e.id),
  );
  follow.kill("SIGINT");
  t.is(await follow.exited, 0);
});

test("events refuses a bad --after before asking the CP", async (t) => {
  const run = await eectl(["events", "--cp", "http://127.0.0.1:1", "--token", ADMIN_TOKEN, "--after", "1e3"]);
  t.is(run.code, 1);
  t.regex(run.stderr, /^eectl: EE-CONFIG-INVALID: --after: expected a whole number/m);
});

test("events --help names the environment variables", async (t) => {
  const run = await eectl(["events", "--help"]);
  t.is(run.code, 0);
  t.regex(run.stdout, /EE_CP_URL/);
  t.regex(run.stdout, /EE_TOKEN/);
});
