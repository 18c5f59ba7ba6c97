// .github/actions/deploy/deploy.mjs run as the action runs it (node, configured by environment variables):
// its token request against a loopback stand-in for GitHub's token endpoint (which also answers the exchange,
// since the CP's endpoint is wired later), its error handling, and the deploy steps against a real CP, agent and
// containers, with a CP token given directly and with a test issuer's token exchanged by identity/ in front of
// the CP (until the CP serves POST /api/v2/auth/oidc itself).
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage } from "node:http";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { DockerRuntime } from "../../agent/runtime/docker.ts";
import { finished } from "../helpers/cli.ts";
import { agentConfig, REPO, startTestAgent, startTestCp, tempDir, waitFor } from "../helpers/cluster.ts";
import { requireDocker } from "../helpers/docker.ts";
import { busyboxImage } from "../helpers/images.ts";
import { TEST_AUDIENCE, TEST_ISSUER, testIssuer } from "../helpers/oidc.ts";
import { closedPort } from "../helpers/temp.ts";
import { postAs, WEB_PORT, webCompose } from "../helpers/workloads.ts";

const SCRIPT = join(REPO, ".github/actions/deploy/deploy.mjs");
const REQUEST_TOKEN = "gh-request-token-not-for-logs";
const ID_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJqdGkiOiJ4In0.c2lnbmF0dXJl";

/** Runs the script with only `env` (plus PATH and HOME): nothing of this process's GitHub or EE_ variables. */
function runScript(env: Record<string, string>) {
  const child = spawn(process.execPath, [SCRIPT], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
  });
  child.stdin.end();
  return finished(child);
}

interface Seen {
  method: string;
  url: string;
  authorization?: string;
  body: string;
}

/**
 * GitHub's token endpoint (GET /token?api-version=2.0&audience=…, bearer REQUEST_TOKEN → {value}) and, on the
 * same port, a CP whose POST /api/v2/auth/oidc answers `exchange`.
 */
async function fakeGithub(
  t: ExecutionContext,
  o: { tokenStatus?: number; tokenBody?: string; exchange?: { status: number; body: unknown } } = {},
) {
  const seen: Seen[] = [];
  const server = createServer(async (req: IncomingMessage, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    seen.push({
      method: req.method!,
      url: req.url!,
      body,
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
    });
    res.setHeader("content-type", "application/json");
    if (req.url?.startsWith("/token")) {
      const ok = req.headers.authorization === `Bearer ${REQUEST_TOKEN}`;
      res.statusCode = ok ? (o.tokenStatus ?? 200) : 401;
      res.end(
        ok ? (o.tokenBody ?? JSON.stringify({ count: 1, value: ID_TOKEN })) : '{"message":"bad credentials"}',
      );
      return;
    }
    const ex = o.exchange ?? {
      status: 401,
      body: { error: { code: "EE-OIDC-NO-BINDING", message: "no OIDC binding admits repository_id 123456" } },
    };
    res.statusCode = ex.status;
    res.end(JSON.stringify(ex.body));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const githubEnv = {
    ACTIONS_ID_TOKEN_REQUEST_URL: `${base}/token?api-version=2.0`,
    ACTIONS_ID_TOKEN_REQUEST_TOKEN: REQUEST_TOKEN,
    EE_CP_URL: base,
    EE_APP: "web",
  };
  return { seen, base, githubEnv };
}

/** No secret the script handled may appear in its output (masks on GitHub are the only exception). */
function noSecrets(t: ExecutionContext, r: { stdout: string; stderr: string }, ...secrets: string[]) {
  const out = (r.stdout + r.stderr).replace(/^::add-mask::.*$/gm, "");
  for (const s of secrets) t.false(out.includes(s), `output shows a secret: ${out}`);
}

test("the token step asks GitHub for an ID token with the CP's audience, posts it to the exchange and reports its refusal", async (t) => {
  const { seen, base, githubEnv } = await fakeGithub(t);
  const r = await runScript(githubEnv);
  t.is(r.code, 1, r.stderr);
  t.is(seen.length, 2);
  const [tokenReq, exchangeReq] = seen;
  t.is(tokenReq!.method, "GET");
  const url = new URL(tokenReq!.url, base);
  t.is(url.pathname, "/token");
  t.is(url.searchParams.get("api-version"), "2.0");
  t.is(url.searchParams.get("audience"), base);
  t.is(tokenReq!.authorization, `Bearer ${REQUEST_TOKEN}`);
  t.is(exchangeReq!.method, "POST");
  t.is(exchangeReq!.url, "/api/v2/auth/oidc");
  t.deepEqual(JSON.parse(exchangeReq!.body), { token: ID_TOKEN });
  t.regex(r.stderr, /^deploy: OIDC exchange refused \(401\): EE-OIDC-NO-BINDING: no OIDC binding admits/m);
  noSecrets(t, r, REQUEST_TOKEN, ID_TOKEN);
});

test("EE_OIDC_AUDIENCE sets the audience; on GitHub the ID token and access token are masked before use", async (t) => {
  const { seen, base, githubEnv } = await fakeGithub(t, {
    exchange: {
      status: 200,
      body: {
        access_token: "eat_secret",
        expires_at: "2026-01-01T00:00:00.000Z",
        account_id: "acc_1",
        scopes: ["deploy"],
      },
    },
  });
  // eectl is a command that does not exist: the run stops right after the exchange, with exit 2.
  const r = await runScript({
    ...githubEnv,
    EE_OIDC_AUDIENCE: "https://cp.example",
    GITHUB_ACTIONS: "true",
    EECTL: "/nonexistent/eectl",
  });
  t.is(new URL(seen[0]!.url, base).searchParams.get("audience"), "https://cp.example");
  t.true(r.stdout.includes(`::add-mask::${ID_TOKEN}\n`));
  t.true(r.stdout.includes("::add-mask::eat_secret\n"));
  t.regex(r.stdout, /exchanged the OIDC token: account acc_1, scopes deploy/);
  t.is(r.code, 2, r.stderr);
  t.regex(r.stderr, /cannot run eectl \(\/nonexistent\/eectl\)/);
  t.regex(r.stdout, /^::error title=EasyEnclave deploy::cannot run eectl/m);
  noSecrets(t, r, REQUEST_TOKEN, ID_TOKEN, "eat_secret");
});

test("without id-token permission (no request env) the script says what to change and exits 2, asking nobody", async (t) => {
  const { seen, githubEnv } = await fakeGithub(t);
  for (const drop of ["ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"] as const) {
    const { [drop]: _, ...env } = githubEnv;
    const r = await runScript(env);
    t.is(r.code, 2);
    t.regex(
      r.stderr,
      new RegExp(`^deploy: ${drop} is not set: give the job \`permissions: id-token: write\``, "m"),
    );
  }
  for (const drop of ["EE_CP_URL", "EE_APP"] as const) {
    const { [drop]: _, ...env } = githubEnv;
    const r = await runScript(env);
    t.is(r.code, 2);
    t.regex(r.stderr, new RegExp(`^deploy: ${drop} is not set`, "m"));
  }
  t.is(seen.length, 0);
});

test("GitHub refusing the token request, answering without a token, or unreachable: exit 1 with the reason", async (t) => {
  const refused = await fakeGithub(t, {
    tokenStatus: 403,
    tokenBody: '{"message":"Resource not accessible by integration"}',
  });
  let r = await runScript(refused.githubEnv);
  t.is(r.code, 1);
  t.regex(r.stderr, /GitHub's OIDC token endpoint answered 403: .*not accessible/);
  t.is(refused.seen.length, 1, "nothing is posted to the CP");
  noSecrets(t, r, REQUEST_TOKEN);

  const empty = await fakeGithub(t, { tokenBody: '{"count":0}' });
  r = await runScript(empty.githubEnv);
  t.is(r.code, 1);
  t.regex(r.stderr, /answered without a token/);

  const port = await closedPort();
  r = await runScript({ ...empty.githubEnv, ACTIONS_ID_TOKEN_REQUEST_URL: `http://127.0.0.1:${port}/token` });
  t.is(r.code, 1);
  t.regex(r.stderr, /could not be reached: ECONNREFUSED/);
});

test("EE_OIDC_TOKEN replaces GitHub's endpoint (local runs): it goes straight to the exchange", async (t) => {
  const { seen, githubEnv } = await fakeGithub(t);
  const r = await runScript({
    ...githubEnv,
    ACTIONS_ID_TOKEN_REQUEST_URL: "",
    EE_OIDC_TOKEN: "local.id.token",
  });
  t.is(r.code, 1);
  t.deepEqual(
    seen.map((s) => s.url),
    ["/api/v2/auth/oidc"],
  );
  t.deepEqual(JSON.parse(seen[0]!.body), { token: "local.id.token" });
});

test.serial(
  "the script registers the version, preflights, deploys, waits healthy, prints the attestation; the next version updates in place; with an OIDC token it deploys once and a replay is refused",
  async (t) => {
    const docker = await requireDocker(t);
    if (!docker) return;
    await busyboxImage(docker);
    const runtime = new DockerRuntime({ docker });
    const issuer = await testIssuer();
    const tcp = await startTestCp(t, {
      oidc: { issuer: TEST_ISSUER, audience: TEST_AUDIENCE, jwks: { kind: "keys", jwks: issuer.jwks } },
    });
    const agent = await startTestAgent(t, agentConfig(t, tcp.cp.wsUrl, tcp.devDir, { vm_name: "vm-action" }));
    // CI acts as a tenant: first with a key of its own, then through its repository's binding.
    const tenant = (
      await postAs<{ account_id: string }>(tcp.api, "/api/v2/accounts", { name: "ci", kind: "tenant" })
    ).body.account_id;
    const tenantKey = (
      await postAs<{ token: string }>(tcp.api, `/api/v2/accounts/${tenant}/keys`, {
        scopes: ["deploy", "read"],
      })
    ).body.token;
    await postAs(tcp.api, "/api/v2/oidc/bindings", {
      account_id: tenant,
      repository_id: 123456,
      scopes: ["deploy", "read"],
    });
    await waitFor("registration", () => tcp.cp.index.get(agent.agentId)?.state === "registered");
    const dir = tempDir(t, "ee-action-");
    const output = join(dir, "github-output");
    writeFileSync(output, "");
    const deploy = async (
      version: string,
      text: string,
      auth: Record<string, string> = { EE_CP_URL: tcp.cp.url, EE_ACCESS_TOKEN: tenantKey },
    ) => {
      const compose = join(dir, `compose-${version}.yaml`);
      writeFileSync(compose, webCompose({ text }));
      const r = await runScript({
        ...auth,
        EE_APP: `web@${version}`,
        EE_COMPOSE: compose,
        EE_HEALTH_PORT: String(WEB_PORT),
        EE_HEALTH_TIMEOUT: "30",
        EE_TIMEOUT_S: "120",
        EECTL: `${process.execPath} ${join(REPO, "bin/eectl.js")}`,
        GITHUB_OUTPUT: output,
      });
      const id = /^deployment (d-[0-9a-f]+) is healthy on agent /m.exec(r.stdout)?.[1];
      if (id) t.teardown(() => runtime.remove(id));
      return { ...r, id };
    };

    const first = await deploy("1.0.0", "one");
    t.is(first.code, 0, first.stdout + first.stderr);
    t.regex(first.stdout, /^registered web@1\.0\.0 \(compose [0-9a-f]{64}\)$/m);
    t.regex(
      first.stdout,
      new RegExp(`^preflight: web \\(compose [0-9a-f]{64}\\) fits agent ${agent.agentId}$`, "m"),
    );
    t.truthy(first.id);
    t.regex(first.stdout, /^status: healthy$/m, "deployments show is printed");
    t.regex(first.stdout, /^agent agt_\S+ attestation:\n\{\n {2}"status": "ok"/m);
    t.regex(first.stdout, /"trust_root": "dev"/);
    noSecrets(t, first, tenantKey);
    t.is(readFileSync(output, "utf8"), `deployment-id=${first.id}\nagent-id=${agent.agentId}\n`);

    const second = await deploy("1.0.1", "two");
    t.is(second.code, 0, second.stdout + second.stderr);
    t.not(second.id, first.id);
    // The app had one healthy deployment: the new version replaced it in place on the same agent.
    const old = await waitFor("the old version replaced", async () => {
      const d = await tcp.api<{ status: string; replaced_by?: string }>(`/api/v2/deployments/${first.id}`);
      return d.body.status === "undeployed" ? d.body : undefined;
    });
    t.is(old.replaced_by, second.id);

    // A re-run of the same job, now with a locally signed OIDC token the CP exchanges (POST /api/v2/auth/oidc),
    // finds the version registered (immutable) and deploys it as it is; the same token a second time is refused.
    const idToken = await issuer.token();
    const rerun = await deploy("1.0.1", "two", { EE_CP_URL: tcp.cp.url, EE_OIDC_TOKEN: idToken });
    t.is(rerun.code, 0, rerun.stdout + rerun.stderr);
    t.regex(
      rerun.stdout,
      new RegExp(`^exchanged the OIDC token: account ${tenant}, scopes deploy,read, until `, "m"),
    );
    t.regex(rerun.stdout, /^web@1\.0\.1 is registered already/m);
    noSecrets(t, rerun, idToken, tenantKey);
    const replay = await deploy("1.0.1", "two", { EE_CP_URL: tcp.cp.url, EE_OIDC_TOKEN: idToken });
    t.is(replay.code, 1);
    t.regex(replay.stderr, /^deploy: OIDC exchange refused \(401\): EE-OIDC-REPLAY: /m);
  },
);
