// The Stately inspector on live actors, end to end: a real CP and agent, a real Docker deploy, and inspection
// clients reading the CP's ndjson endpoints, `eectl inspect … --jsonl`, `eectl inspect … --serve` over WebSocket,
// and the agent's own machines served by `--inspect`. Events carry no secrets.
import test, { type ExecutionContext } from "ava";
import WebSocket from "ws";
import { startAgent } from "../../agent/agent.ts";
import { silentLogger } from "../../lib/log.ts";
import { topLevelState } from "../../machines/agent-session.ts";
import { type StatelyEvent, statelyObserver } from "../../transport/inspection.ts";
import { serveInspector } from "../../transport/inspector-server.ts";
import { eectlRunning } from "../helpers/cli.ts";
import {
  ADMIN_TOKEN,
  agentConfig,
  startTestAgent,
  startTestCp,
  type TestCp,
  waitFor,
} from "../helpers/cluster.ts";
import { cpContract } from "../helpers/contract.ts";
import { requireDocker } from "../helpers/docker.ts";
import { busyboxImage } from "../helpers/images.ts";
import { closedPort } from "../helpers/temp.ts";
import { deploymentIn, postJson, WEB_PORT, webCompose } from "../helpers/workloads.ts";

/** An inspection stream read as a client would: every event so far, and whether the server ended it. */
interface Stream {
  status: number;
  events: StatelyEvent[];
  ended: () => boolean;
  close: () => void;
}

async function openStream(
  t: ExecutionContext,
  url: string,
  token: string | null = ADMIN_TOKEN,
): Promise<Stream> {
  const abort = new AbortController();
  t.teardown(() => abort.abort());
  const res = await cpContract.fetch(url, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
    signal: abort.signal,
  });
  const events: StatelyEvent[] = [];
  let ended = false;
  if (res.ok && res.body) {
    (async () => {
      const decoder = new TextDecoder();
      let buf = "";
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        for (let cut = buf.indexOf("\n"); cut >= 0; cut = buf.indexOf("\n")) {
          events.push(JSON.parse(buf.slice(0, cut)) as StatelyEvent);
          buf = buf.slice(cut + 1);
        }
      }
      ended = true;
    })().catch((err: unknown) => {
      ended = true;
      // A line off the contract (or a broken stream) fails the test; the teardown's abort does not.
      if (!abort.signal.aborted) t.fail(`the inspect stream broke: ${String(err)}`);
    });
  } else {
    events.push((await res.json()) as StatelyEvent);
  }
  return { status: res.status, events, ended: () => ended, close: () => abort.abort() };
}

/** The top-level state of each snapshot, consecutive repeats folded: the path the machine took. */
function path(events: StatelyEvent[]): string[] {
  const out: string[] = [];
  for (const e of events) {
    if (e.type !== "@xstate.snapshot") continue;
    const state = topLevelState((e.snapshot as { value: never }).value);
    if (out.at(-1) !== state) out.push(state);
  }
  return out;
}

/** A WebSocket client of an inspector server, collecting the JSON events it is sent. */
async function wsClient(t: ExecutionContext, url: string): Promise<StatelyEvent[]> {
  const events: StatelyEvent[] = [];
  const ws = await waitFor(
    `a WebSocket to ${url}`,
    () =>
      new Promise<WebSocket | undefined>((resolve) => {
        const socket = new WebSocket(url);
        socket.on("message", (data) => events.push(JSON.parse(String(data)) as StatelyEvent));
        socket.once("open", () => resolve(socket));
        socket.once("error", () => resolve(undefined));
      }),
    20_000,
  );
  t.teardown(() => ws.terminate());
  return events;
}

async function cluster(t: ExecutionContext): Promise<{ tcp: TestCp; agentId: string } | null> {
  const docker = await requireDocker(t);
  if (!docker) return null;
  await busyboxImage(docker);
  const tcp = await startTestCp(t);
  const agent = await startTestAgent(t, agentConfig(t, tcp.cp.wsUrl, tcp.devDir));
  await waitFor("registration", () => tcp.cp.index.get(agent.agentId)?.state === "registered");
  return { tcp, agentId: agent.agentId };
}

test.serial(
  "an inspect client sees the agent's session move registered → deploying → healthy, and the deployment's machine to its end",
  async (t) => {
    const c = await cluster(t);
    if (!c) return;
    const { tcp, agentId } = c;
    const agentStream = await openStream(t, `${tcp.cp.url}/api/v2/agents/${agentId}/inspect`);
    t.is(agentStream.status, 200);
    // Where the machine is now comes first: its actor (with the machine definition) and its present snapshot.
    await waitFor("the present state", () => path(agentStream.events).length > 0);
    const first = agentStream.events[0]!;
    t.is(first.type, "@xstate.actor");
    t.is(JSON.parse(first.definition as string).id, "agentSession");
    t.deepEqual(path(agentStream.events), ["registered"]);

    const res = await postJson<{ deployment_id: string }>(tcp.api, "/api/v2/deployments", {
      app: "web",
      compose: webCompose(),
      health: { port: WEB_PORT, path: "/", timeout_s: 30 },
    });
    t.is(res.status, 202, JSON.stringify(res.body));
    const id = res.body.deployment_id;
    await deploymentIn(tcp.api, id, ["healthy"], 60_000);
    await waitFor("the healthy snapshot", () => path(agentStream.events).includes("healthy"), 20_000);
    t.deepEqual(path(agentStream.events), ["registered", "deploying", "healthy"]);
    const events = agentStream.events.filter((e) => e.type === "@xstate.event").map((e) => e.event);
    t.true(
      events.some((e) => (e as { type: string }).type === "DEPLOY"),
      "the DEPLOY event is shown",
    );
    t.false(agentStream.ended(), "the agent's stream stays open while its actor lives");

    // A deployment's stream starts where it is and ends with its actor.
    const depStream = await openStream(t, `${tcp.cp.url}/api/v2/deployments/${id}/inspect`);
    t.is(depStream.status, 200);
    await waitFor("the deployment's present state", () => path(depStream.events).length > 0);
    t.deepEqual(path(depStream.events), ["healthy"]);
    t.is((await tcp.api(`/api/v2/deployments/${id}/undeploy`, { method: "POST" })).status, 202);
    await waitFor("the deployment's stream to end with its actor", () => depStream.ended(), 30_000);
    t.deepEqual(path(depStream.events), ["healthy", "undeploying", "undeployed"]);
    await waitFor("the session back to registered", () => path(agentStream.events).at(-1) === "registered");

    // The session's API secret is held outside actor context; nothing resembling it leaves in an event.
    const secret = Buffer.from(tcp.cp.supervisor.apiSecret(agentId)!).toString("hex");
    t.false(JSON.stringify(agentStream.events).includes(secret));

    // An ended deployment has no actor: 404 with the usual error body.
    const gone = await tcp.api<{ error: { code: string; message: string } }>(
      `/api/v2/deployments/${id}/inspect`,
    );
    t.is(gone.status, 404);
    t.is(gone.body.error.code, "EE-NOT-FOUND");
    t.regex(gone.body.error.message, /undeployed/);
  },
);

test("unknown agents and deployments are 404, and inspection needs the admin token", async (t) => {
  const { cp, api } = await startTestCp(t);
  for (const path of [
    "/api/v2/agents/agt_000000000000000000000000/inspect",
    "/api/v2/deployments/d-00/inspect",
  ]) {
    const missing = await api<{ error: { code: string; message: string } }>(path);
    t.is(missing.status, 404, path);
    t.is(missing.body.error.code, "EE-NOT-FOUND");
    t.regex(
      missing.body.error.message,
      /is not known to this control plane|does not exist/,
      "routed, not a miss",
    );
    const anonymous = await openStream(t, `${cp.url}${path}`, null);
    t.is(anonymous.status, 401);
    t.is((anonymous.events[0] as unknown as { error: { code: string } }).error.code, "EE-AUTH-MISSING");
    const wrong = await api<{ error: { code: string } }>(path, { token: "not-the-admin-token-at-all" });
    t.is(wrong.status, 401);
  }
});

test.serial(
  "`eectl inspect agent --jsonl` prints JSON lines; `--serve` relays them to a WebSocket client",
  async (t) => {
    const tcp = await startTestCp(t);
    const agent = await startTestAgent(t, agentConfig(t, tcp.cp.wsUrl, tcp.devDir));
    await waitFor("registration", () => tcp.cp.index.get(agent.agentId)?.state === "registered");
    const env = { EE_CP_URL: tcp.cp.url, EE_TOKEN: ADMIN_TOKEN };

    const jsonl = eectlRunning(t, ["inspect", "agent", agent.agentId, "--jsonl"], env);
    const lines = await waitFor(
      "a snapshot line",
      () => {
        const out = jsonl.stdout().split("\n").filter(Boolean);
        return out.some((l) => l.includes('"@xstate.snapshot"')) ? out : undefined;
      },
      30_000,
    );
    const events = lines.map((l) => JSON.parse(l) as StatelyEvent);
    t.is(events[0]!.type, "@xstate.actor");
    t.deepEqual(path(events), ["registered"]);
    jsonl.kill("SIGINT");
    t.is(await jsonl.exited, 0, "Ctrl-C ends it cleanly");

    const port = await closedPort();
    eectlRunning(t, ["inspect", "agent", agent.agentId, "--serve", `127.0.0.1:${port}`], env);
    const received = await wsClient(t, `ws://127.0.0.1:${port}`);
    await waitFor("the actor and its snapshot", () => path(received).length > 0, 30_000);
    t.is(received[0]!.type, "@xstate.actor");
    t.deepEqual(path(received), ["registered"]);
    // Live events follow: a stale agent's snapshot, once its agent stops heartbeating.
    await agent.stop();
    await waitFor("the stale snapshot", () => path(received).includes("stale"), 30_000);
    // The page to open embeds the Stately inspector and reads the same server.
    const page = await fetch(`http://127.0.0.1:${port}/`);
    t.is(page.status, 200);
    t.regex(await page.text(), /https:\/\/stately\.ai\/inspect/);
  },
);

test.serial(
  "`--inspect` serves the agent's own machines, with the session's API secret scrubbed",
  async (t) => {
    const tcp = await startTestCp(t);
    const server = await serveInspector("127.0.0.1", await closedPort());
    t.teardown(() => server.close());
    const sent: StatelyEvent[] = [];
    const agent = await startAgent(agentConfig(t, tcp.cp.wsUrl, tcp.devDir), {
      log: silentLogger,
      inspect: await statelyObserver((e) => {
        sent.push(e);
        server.send(e);
      }),
    });
    t.teardown(() => agent.stop());
    await waitFor("registration", () => tcp.cp.index.get(agent.agentId)?.state === "registered");

    // A viewer that connects after the fact is shown every actor and where it is now.
    const received = await wsClient(t, server.wsUrl);
    const connection = await waitFor("the agent's actors", () => {
      const actors = received.filter((e) => e.type === "@xstate.actor");
      return actors.some((e) => e.name === "attestationRefresh")
        ? actors.find((e) => e.name === "agentConnection")
        : undefined;
    });
    await waitFor("a registered snapshot of the connection", () =>
      received.some(
        (e) =>
          e.type === "@xstate.snapshot" &&
          e.sessionId === connection.sessionId &&
          topLevelState((e.snapshot as { value: never }).value) === "registered",
      ),
    );

    // The CP's `registered` frame went through the machine as an event; its api_secret did not go out with it.
    const registered = await waitFor("the registered frame's event", () =>
      sent.find(
        (e) =>
          e.type === "@xstate.event" &&
          (e.event as { envelope?: { type?: string } }).envelope?.type === "registered",
      ),
    );
    const body = (registered.event as { envelope: { body: Record<string, unknown> } }).envelope.body;
    t.is(body.api_secret, "[scrubbed]");
    t.is(body.agent_id, agent.agentId, "the rest of the frame is shown");
    const secret = Buffer.from(tcp.cp.supervisor.apiSecret(agent.agentId)!).toString("hex");
    t.false(JSON.stringify([...sent, ...received]).includes(secret), "the API secret never appears");
  },
);
