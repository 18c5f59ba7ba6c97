// A started agent whose CP is absent (or only challenges): its local HTTP API still answers, and says so.
import { existsSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import test from "ava";
import { WebSocketServer } from "ws";
import { startAgent } from "../../agent/agent.ts";
import { parseAgentConfig } from "../../agent/config.ts";
import type { AgentHealth } from "../../agent/health.ts";
import { AGENT_VERSION } from "../../agent/version.ts";
import { devInit } from "../../attestation/dev-pki.ts";
import type { QuoteProvider } from "../../attestation/providers/provider.ts";
import { TSM_REPORT_ROOT } from "../../attestation/providers/tsm.ts";
import { StartupError, ValidationError } from "../../spec/errors.ts";
import { CONNECT_PATH } from "../../spec/protocol.ts";
import { encodeFrame } from "../../transport/frame.ts";
import { agentContract } from "../helpers/contract.ts";
import { closedPort, tempDir } from "../helpers/temp.ts";

/** Stands in for the TD's quoting (named tsm while the config says dev: health reports the provider's name). */
const fixedQuote: QuoteProvider = { name: "tsm", getQuote: async () => new Uint8Array(64) };

async function config(t: { teardown(fn: () => void): void }, over: Record<string, unknown> = {}) {
  return parseAgentConfig(
    {
      control_plane_url: `ws://127.0.0.1:${await closedPort()}`,
      vm_name: "vm-h",
      node_size: "tiny",
      datacenter: "baremetal:local",
      api_listen: "127.0.0.1:0",
      data_dir: join(tempDir(t, "ee-agent-"), "data"),
      heartbeat_interval_ms: 200,
      attestation: { provider: "tsm" },
      ...over,
    },
    "test",
  );
}

test("health of an agent whose CP is unreachable: ok, not registered, link down or retrying", async (t) => {
  const agent = await startAgent(await config(t), { quoteProvider: fixedQuote });
  t.teardown(() => agent.stop());
  t.regex(agent.apiUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
  t.regex(agent.agentId, /^agt_[0-9a-f]{24}$/);

  const res = await agentContract.fetch(`${agent.apiUrl}/api/health`);
  t.is(res.status, 200);
  t.regex(res.headers.get("content-type") ?? "", /application\/json/);
  const body = (await res.json()) as AgentHealth;
  t.like(body, {
    status: "ok",
    agent_id: agent.agentId,
    vm_name: "vm-h",
    node_size: "tiny",
    datacenter: "baremetal:local",
    registered: false,
    attestation_provider: "tsm",
    version: AGENT_VERSION,
  });
  t.true(["connecting", "disconnected"].includes(body.connection), body.connection);
  t.true(Number.isInteger(body.uptime_s) && body.uptime_s >= 0);
  t.is(agent.state().registered, false);
});

test("the link's state changes reach onStateChange", async (t) => {
  const agent = await startAgent(await config(t), { quoteProvider: fixedQuote });
  t.teardown(() => agent.stop());
  const seen = await new Promise<string>((resolve) => {
    if (agent.state().state === "disconnected") resolve("disconnected");
    const off = agent.onStateChange((v) => {
      off();
      resolve(v.state);
    });
  });
  t.true(["connecting", "disconnected"].includes(seen));
});

test("unknown /api paths answer a JSON 404 without a stack; other paths go to the (absent) workload", async (t) => {
  const agent = await startAgent(await config(t), { quoteProvider: fixedQuote });
  t.teardown(() => agent.stop());
  for (const [method, path] of [
    ["GET", "/api/nope"],
    ["POST", "/api/health"],
  ] as const) {
    const res = await agentContract.fetch(`${agent.apiUrl}${path}`, { method, badRequest: true });
    t.is(res.status, 404, `${method} ${path}`);
    const body = (await res.json()) as { error: { code: string; message: string; stack?: unknown } };
    t.is(body.error.code, "EE-NOT-FOUND");
    t.is(body.error.message, `no route for ${method} ${path}`);
    t.false(JSON.stringify(body).includes("at "), "no stack frames");
  }
  const proxied = await agentContract.fetch(`${agent.apiUrl}/`);
  t.is(proxied.status, 503);
  t.is(((await proxied.json()) as { error: { code: string } }).error.code, "EE-WORKLOAD-NONE");
});

test("the same data_dir gives the same agent_id across restarts", async (t) => {
  const cfg = await config(t);
  const a = await startAgent(cfg, { quoteProvider: fixedQuote });
  await a.stop();
  const b = await startAgent(cfg, { quoteProvider: fixedQuote });
  t.teardown(() => b.stop());
  t.is(b.agentId, a.agentId);
});

test("stop closes the HTTP server; a second stop is harmless", async (t) => {
  const agent = await startAgent(await config(t), { quoteProvider: fixedQuote });
  await agent.stop();
  await agent.stop();
  await t.throwsAsync(fetch(`${agent.apiUrl}/api/health`));
});

test("an api_listen already in use is EE-LISTEN-BUSY naming the address and the key, and nothing is left running", async (t) => {
  const first = await startAgent(await config(t), { quoteProvider: fixedQuote });
  t.teardown(() => first.stop());
  const taken = first.apiUrl.replace("http://", "");
  const err = await t.throwsAsync(
    startAgent(await config(t, { api_listen: taken }), { quoteProvider: fixedQuote }),
    { instanceOf: StartupError },
  );
  t.is(err.code, "EE-LISTEN-BUSY");
  t.is(
    err.message,
    `${taken} is already in use (is another control plane or agent running?); listen elsewhere with api_listen in the agent config`,
  );
});

test("a data_dir under a regular file is EE-DATA-DIR-UNUSABLE naming the file", async (t) => {
  const file = join(tempDir(t, "ee-agent-file-"), "plain-file");
  writeFileSync(file, "x");
  const err = await t.throwsAsync(
    startAgent(await config(t, { data_dir: join(file, "agent") }), { quoteProvider: fixedQuote }),
    { instanceOf: StartupError },
  );
  t.is(err.code, "EE-DATA-DIR-UNUSABLE");
  t.is(
    err.message,
    `data_dir in the agent config ${join(file, "agent")}: ${file} is a file, not a directory`,
  );
});

test("the tsm provider named by the config is used and reported in health", async (t) => {
  const agent = await startAgent(await config(t));
  t.teardown(() => agent.stop());
  const body = (await (await agentContract.fetch(`${agent.apiUrl}/api/health`)).json()) as AgentHealth;
  t.is(body.attestation_provider, "tsm");
});

// Only meaningful where ConfigFS-TSM is absent; on a real TD the quote would succeed.
const withoutConfigfsTsm = existsSync(TSM_REPORT_ROOT) ? test.skip : test;

withoutConfigfsTsm(
  "a tsm agent without configfs starts and reports the quote failure in health",
  async (t) => {
    // A CP that only ever challenges: enough to make the agent ask its provider for a quote.
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, path: CONNECT_PATH });
    await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
    wss.on("connection", (ws) =>
      ws.send(
        encodeFrame(
          "challenge",
          { nonce: new Uint8Array(32), expires_at: Date.now() + 10_000, server_time: Date.now() },
          { id: 1 },
        ),
      ),
    );
    t.teardown(
      () =>
        new Promise<void>((resolve) => {
          for (const c of wss.clients) c.terminate();
          wss.close(() => resolve());
        }),
    );
    const port = (wss.address() as AddressInfo).port;
    const agent = await startAgent(await config(t, { control_plane_url: `ws://127.0.0.1:${port}` }));
    t.teardown(() => agent.stop());
    await new Promise<void>((resolve) => {
      if (agent.state().lastError === "EE-ATT-PROVIDER") resolve();
      const off = agent.onStateChange((v) => {
        if (v.lastError !== "EE-ATT-PROVIDER") return;
        off();
        resolve();
      });
    });
    const body = (await (await agentContract.fetch(`${agent.apiUrl}/api/health`)).json()) as AgentHealth;
    t.like(body, {
      status: "ok",
      registered: false,
      attestation_provider: "tsm",
      last_error: "EE-ATT-PROVIDER",
    });
  },
);

test("the dev provider named by the config is used and reported in health", async (t) => {
  const devDir = tempDir(t, "ee-agent-dev-");
  await devInit(devDir);
  const agent = await startAgent(await config(t, { attestation: { provider: "dev", dir: devDir } }));
  t.teardown(() => agent.stop());
  const body = (await (await agentContract.fetch(`${agent.apiUrl}/api/health`)).json()) as AgentHealth;
  t.is(body.attestation_provider, "dev");
});

test("a dev attestation dir without a dev root is a config error", async (t) => {
  const empty = tempDir(t, "ee-agent-nodev-");
  const err = await t.throwsAsync(
    startAgent(await config(t, { attestation: { provider: "dev", dir: empty } })),
    {
      instanceOf: ValidationError,
    },
  );
  t.is(err.code, "EE-CONFIG-INVALID");
});
