#!/usr/bin/env node
// The EasyEnclave deploy action's script (action.yml runs it; so can a shell, for local tests): asks GitHub for
// an OIDC ID token, exchanges it at the CP's POST /api/v2/auth/oidc for a short-lived access token, registers the
// app version when given a compose file and a version, preflights, deploys (an update in place when the app
// already has one healthy deployment, or of `replace`), waits for healthy and prints the deployment and the
// attestation of the agent it runs on. Plain Node 20, no packages: it runs on any runner with node and eectl.
//
// Configuration is environment variables (action.yml maps its inputs onto them):
//   EE_CP_URL (required)   the control plane's URL
//   EE_APP (required)      app name, or NAME@VERSION (registered first when EE_COMPOSE is set)
//   EE_COMPOSE             compose file; EE_HEALTH_PORT, EE_HEALTH_PATH, EE_HEALTH_TIMEOUT its health gate
//   EE_NODE_SIZE, EE_DATACENTER, EE_AGENT   placement constraints; EE_REPLACE a deployment to replace
//   EE_TIMEOUT_S           how long to wait for healthy (default 600)
//   EE_OIDC_AUDIENCE       the audience to ask GitHub for (default EE_CP_URL)
//   EECTL                  how to run eectl (default "eectl"), e.g. "node ./bin/eectl.js"
// Token sources, first one set wins: EE_ACCESS_TOKEN (a CP bearer token: an API key; skips OIDC), EE_OIDC_TOKEN
// (an ID token obtained elsewhere: local tests), else GitHub's ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN, which a job
// has only with `permissions: id-token: write`. Tokens are never printed (on GitHub they are masked as well).
// Exit codes: 0 healthy, 1 a failed step (its EE-* code printed), 2 missing or bad configuration.
import { spawn } from "node:child_process";
import { appendFileSync } from "node:fs";

const env = process.env;
const onGithub = env.GITHUB_ACTIONS === "true";

class StepError extends Error {
  constructor(message, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

const config = (name) => {
  const v = env[name];
  return v === undefined || v === "" ? undefined : v;
};
const required = (name, why) => {
  const v = config(name);
  if (v === undefined) throw new StepError(`${name} is not set: ${why}`, 2);
  return v;
};

/** Hides a secret in GitHub's log from here on; elsewhere it is simply never printed. */
function mask(secret) {
  if (onGithub) process.stdout.write(`::add-mask::${secret}\n`);
}

/** Asks GitHub's token service for an ID token with `audience`; every failure says what to change. */
async function requestIdToken(audience) {
  const override = config("EE_OIDC_TOKEN");
  if (override !== undefined) return override;
  const hint =
    "give the job `permissions: id-token: write` (or set EE_OIDC_TOKEN / EE_ACCESS_TOKEN outside GitHub)";
  const url = new URL(required("ACTIONS_ID_TOKEN_REQUEST_URL", hint));
  const bearer = required("ACTIONS_ID_TOKEN_REQUEST_TOKEN", hint);
  url.searchParams.set("audience", audience);
  let res;
  try {
    res = await fetch(url, {
      headers: { authorization: `Bearer ${bearer}`, accept: "application/json" },
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw new StepError(
      `GitHub's OIDC token endpoint ${url.origin} could not be reached: ${err.cause?.code ?? err.message}`,
    );
  }
  const text = await res.text();
  if (res.status !== 200)
    throw new StepError(`GitHub's OIDC token endpoint answered ${res.status}: ${text.slice(0, 200)}`);
  let value;
  try {
    value = JSON.parse(text).value;
  } catch {
    // value stays undefined
  }
  if (typeof value !== "string" || value.split(".").length !== 3)
    throw new StepError("GitHub's OIDC token endpoint answered without a token (no JWT in `value`)");
  mask(value);
  return value;
}

/** POST /api/v2/auth/oidc: the ID token for a short-lived access token of the binding's account. */
async function exchange(cpUrl, idToken) {
  let res;
  try {
    res = await fetch(new URL("/api/v2/auth/oidc", cpUrl), {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ token: idToken }),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw new StepError(
      `EE-CLI-UNREACHABLE: the control plane at ${cpUrl} could not be reached: ${err.cause?.code ?? err.message}`,
    );
  }
  const body = await res.json().catch(() => undefined);
  if (!res.ok) {
    const e = body?.error;
    throw new StepError(
      `OIDC exchange refused (${res.status}): ${e?.code ?? "no EE code"}: ${e?.message ?? "no error body"}`,
    );
  }
  if (typeof body?.access_token !== "string")
    throw new StepError("OIDC exchange answered without an access_token");
  mask(body.access_token);
  console.log(
    `exchanged the OIDC token: account ${body.account_id}, scopes ${body.scopes?.join(",")}, until ${body.expires_at}`,
  );
  return body.access_token;
}

/**
 * Runs eectl with the CP and token in its environment (never on its command line, where `ps` shows it); with
 * `json`, parses what it prints; a failure names eectl's EE-* code.
 */
function eectl(args, { json = true, cpUrl, token }) {
  const [cmd, ...pre] = (config("EECTL") ?? "eectl").split(/\s+/);
  const argv = [...pre, ...args, ...(json ? ["--json"] : [])];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, {
      env: { ...env, EE_CP_URL: cpUrl, EE_TOKEN: token },
      stdio: ["ignore", json ? "pipe" : "inherit", "inherit"],
    });
    let out = "";
    child.stdout?.on("data", (b) => {
      out += b;
    });
    child.on("error", (err) =>
      reject(new StepError(`cannot run eectl (${cmd}): ${err.message}; set EECTL`, 2)),
    );
    child.on("close", (code) => {
      let doc;
      try {
        doc = json ? JSON.parse(out) : undefined;
      } catch {
        // not JSON: reported below by the exit code
      }
      if (code === 0) return resolve(doc);
      const e = doc?.error;
      const failed = new StepError(
        `eectl ${args[0]} failed: ${e ? `${e.code}: ${e.message}` : `exit ${code}`}`,
      );
      reject(Object.assign(failed, { error: e, doc }));
    });
  });
}

/** eectl flags for the variables that are set: [[VARIABLE, --flag], …] → [--flag, value, …]. */
function flagsFrom(pairs) {
  return pairs.flatMap(([name, flag]) => (config(name) === undefined ? [] : [flag, config(name)]));
}

const placementFlags = () =>
  flagsFrom([
    ["EE_NODE_SIZE", "--node-size"],
    ["EE_DATACENTER", "--datacenter"],
    ["EE_AGENT", "--agent"],
  ]);
const healthFlags = () =>
  flagsFrom([
    ["EE_HEALTH_PORT", "--health-port"],
    ["EE_HEALTH_PATH", "--health-path"],
    ["EE_HEALTH_TIMEOUT", "--health-timeout"],
  ]);

/**
 * The deployment this deploy updates in place: EE_REPLACE's, else the app's one healthy deployment (the CP's own
 * rule for a deploy that names no agent), else none.
 */
async function replacedDeployment(run, appName) {
  const id = config("EE_REPLACE");
  if (id !== undefined) return run(["deployments", "show", id]);
  if (config("EE_AGENT") !== undefined) return undefined;
  const { deployments } = await run(["deployments", "list", "--status", "healthy", "--limit", "1000"]);
  const mine = deployments.filter((d) => d.app === appName);
  return mine.length === 1 ? mine[0] : undefined;
}

function output(name, value) {
  if (env.GITHUB_OUTPUT) appendFileSync(env.GITHUB_OUTPUT, `${name}=${value}\n`);
}

async function main() {
  const cpUrl = required("EE_CP_URL", "the control plane's URL (input cp-url)");
  const app = required("EE_APP", "the app name or NAME@VERSION to deploy (input app)");
  const compose = config("EE_COMPOSE");
  let token = config("EE_ACCESS_TOKEN");
  if (token !== undefined) mask(token);
  else token = await exchange(cpUrl, await requestIdToken(config("EE_OIDC_AUDIENCE") ?? cpUrl));
  const run = (args, o = {}) => eectl(args, { cpUrl, token, ...o });

  const versioned = app.lastIndexOf("@") > 0;
  // A compose with a version is published as that app version first, so what runs has a name in the registry;
  // versions are immutable, so a re-run of the same job finds it registered and deploys it as it is.
  let source = compose !== undefined ? ["--compose", compose, ...healthFlags()] : [];
  if (compose !== undefined && versioned) {
    try {
      const a = await run(["apps", "register", app, "--compose", compose, ...healthFlags()]);
      console.log(`registered ${a.ref} (compose ${a.compose_hash})`);
    } catch (err) {
      if (err.error?.code !== "EE-CONFLICT-STATE") throw err;
      console.log(`${app} is registered already (versions are immutable): deploying the registered one`);
    }
    source = [];
  }
  const request = ["--app", app, ...source, ...placementFlags()];

  // preflight --json exits 1 with its result when no agent fits: every agent's reasons are worth printing.
  const pre = await run(["preflight", ...request]).catch((err) => {
    if (err.doc?.ok !== false) throw err;
    return err.doc;
  });
  const replaced = await replacedDeployment(run, pre.app);
  if (pre.ok)
    console.log(
      `preflight: ${pre.app} (compose ${pre.compose_hash}) fits agent ${pre.placement.chosen.agent_id}`,
    );
  else {
    // Preflight places a fresh deployment, while an update in place goes to the replaced deployment's agent,
    // busy with exactly that deployment. Any other reason there, or nothing to replace, is a real no-fit.
    const there = replaced && pre.placement.candidates.find((c) => c.agent_id === replaced.agent_id);
    if (there?.reasons.join(",") !== "EE-PLACE-BUSY") {
      for (const c of pre.placement.candidates)
        console.log(`  ${c.agent_id} ${c.state}: ${c.reasons.join(",")}`);
      throw new StepError(`preflight: no agent fits ${app} (${pre.placement.considered} considered)`);
    }
  }
  if (replaced) console.log(`updating ${replaced.deployment_id} in place on agent ${replaced.agent_id}`);

  const idempotency = env.GITHUB_RUN_ID
    ? [`--idempotency-key`, `gh-${env.GITHUB_RUN_ID}-${env.GITHUB_RUN_ATTEMPT ?? 1}-${app}`]
    : [];
  const d = await run([
    "deploy",
    ...request,
    ...(config("EE_REPLACE") ? ["--replace", config("EE_REPLACE")] : []),
    ...idempotency,
    "--wait",
    "--timeout",
    config("EE_TIMEOUT_S") ?? "600",
  ]);
  output("deployment-id", d.deployment_id);
  output("agent-id", d.agent_id);
  console.log(`\ndeployment ${d.deployment_id} is ${d.status} on agent ${d.agent_id}`);
  await run(["deployments", "show", d.deployment_id], { json: false });
  try {
    const agent = await run(["agents", "show", d.agent_id]);
    console.log(`\nagent ${agent.agent_id} attestation:\n${JSON.stringify(agent.attestation, null, 2)}`);
  } catch (err) {
    // The deployment is healthy; a token without the scope to read agents does not make the job fail.
    console.log(`\nthe agent's attestation could not be read: ${err.message}`);
  }
}

main().catch((err) => {
  const code = err instanceof StepError ? err.exitCode : 1;
  process.stderr.write(`deploy: ${err instanceof StepError ? err.message : err.stack}\n`);
  if (onGithub)
    process.stdout.write(`::error title=EasyEnclave deploy::${String(err.message).split("\n")[0]}\n`);
  process.exit(code);
});
