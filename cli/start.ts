// `npm start`: a control plane on 127.0.0.1:8080 with its SQLite store under ./.easyenclave/, plus one local
// agent with dev attestation. A local development loop, not a deployment: it creates the dev attestation root
// and keeps the admin token in ./.easyenclave/admin-token (0600) so restarts print the same one. An operator's
// mistake (a busy port, EE_HOME under a file) is `eectl: CODE: message` naming the variable to change, and exit 1.
// Its demo workload is pulled from a local registry it runs (cli/demo-registry.ts) when docker-registry is installed.
// Environment: EE_HOME, EE_PORT, EE_AGENT_LISTEN, EE_REGISTRY_PORT, EE_ADMIN_TOKEN, EE_LOG_LEVEL (docs/environment.md).
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import Docker from "dockerode";
import { startAgent } from "../agent/agent.ts";
import { parseAgentConfig } from "../agent/config.ts";
import { DEV_PKI_FILES, devInit } from "../attestation/dev-pki.ts";
import { startControlPlane } from "../cp/control-plane.ts";
import { ensureDataDir } from "../lib/data-dir.ts";
import { HeldOutput } from "../lib/held-output.ts";
import { createLogger } from "../lib/log.ts";
import { ValidationError } from "../spec/errors.ts";
import { reportFailure } from "./base.ts";
import { busyboxContext, DEMO_PORT, demoCompose, hasHostBusybox } from "./demo.ts";
import { startDemoRegistry } from "./demo-registry.ts";
import { hasRegistry } from "./local-registry.ts";
import { untilSignal } from "./signals.ts";

try {
  await main();
} catch (err) {
  process.exit(reportFailure(err, false, process));
}

async function main(): Promise<void> {
  const root = resolve(process.env.EE_HOME || ".easyenclave");
  const port = envPort(process.env.EE_PORT);
  const devDir = join(root, "dev-attestation");
  ensureDataDir(root, "EE_HOME");
  if (!existsSync(join(devDir, DEV_PKI_FILES.rootCert))) await devInit(devDir);

  const tokenFile = join(root, "admin-token");
  const adminToken =
    process.env.EE_ADMIN_TOKEN ||
    (existsSync(tokenFile)
      ? readFileSync(tokenFile, "utf8").trim()
      : `ee_${randomBytes(24).toString("base64url")}`);
  if (!process.env.EE_ADMIN_TOKEN) writeFileSync(tokenFile, `${adminToken}\n`, { mode: 0o600 });

  // The CP's and the agent's logs (readable lines on a terminal, JSON otherwise) are held until the banner is
  // out, then follow it: registrations, staleness and deployments show up as they happen.
  const logOutput = new HeldOutput(process.stderr);
  const logLevel = process.env.EE_LOG_LEVEL || "info";
  const cp = await startControlPlane({
    host: "127.0.0.1",
    port,
    dataDir: join(root, "cp"),
    log: createLogger("control-plane", logLevel, logOutput),
    adminToken,
    devAttestationDir: devDir,
    settings: { listen: "EE_PORT=PORT npm start", dataDir: "EE_HOME" },
  });
  const agent = await startAgent(
    parseAgentConfig(
      {
        control_plane_url: cp.wsUrl,
        vm_name: "local-agent",
        node_size: "tiny",
        datacenter: "baremetal:local",
        api_listen: process.env.EE_AGENT_LISTEN ?? "127.0.0.1:9001",
        data_dir: join(root, "agent"),
        heartbeat_interval_ms: 5000,
        attestation: { provider: "dev", dir: devDir },
      },
      "npm start",
    ),
    {
      log: createLogger("agent", logLevel, logOutput),
      apiListenSetting: "EE_AGENT_LISTEN=HOST:PORT npm start",
    },
  ).catch(async (err: unknown) => {
    await cp.stop();
    throw err;
  });

  const registered = await new Promise<boolean>((done) => {
    if (agent.state().state === "registered") return done(true);
    const timer = setTimeout(() => done(false), 15_000);
    const off = agent.onStateChange((v) => {
      if (v.state !== "registered") return;
      clearTimeout(timer);
      off();
      done(true);
    });
  });

  const demo = await prepareDemo(root, agent.apiUrl).catch(async (err: unknown) => {
    await agent.stop();
    await cp.stop();
    throw err;
  });

  // The banner's commands work once it is out: a deploy before the CP's settle window closes is EE-NOT-READY.
  const ready = await cpReady(cp.url, 30_000);

  // Listening before the banner: writes to a terminal block while it is busy, so a Ctrl-C can arrive while the
  // held log lines are still going out, and it must stop both cleanly then too (not kill with exit 130).
  const stopRequested = untilSignal();

  process.stdout.write(`
EasyEnclave is running (dev attestation: quotes are signed by a development root, not by TDX hardware)

  control plane   ${cp.url}          (REST, OpenAPI at ${cp.url}/openapi.json)
  agent socket    ${cp.wsUrl}/api/v2/agents/connect
  local agent     ${agent.agentId} "local-agent" ${registered ? "registered" : "NOT registered yet"}, API at ${agent.apiUrl}/api/health
  admin token     ${adminToken}
  data            ${root}${ready ? "" : "\n  (the control plane is not ready yet: GET /readyz says why)"}

Try:
  export EE_CP_URL=${cp.url} EE_TOKEN=${adminToken}
  npx eectl agents list
  npx eectl agents show ${agent.agentId}
  npx eectl agents watch
${demo.text}
Ctrl-C stops both.
`);
  logOutput.release();

  await stopRequested;
  await agent.stop();
  await cp.stop();
  await demo.stop();
  process.exit(0);
}

/** Polls GET /readyz until it answers 200 or `timeoutMs` passes; whether it did. */
async function cpReady(url: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await fetch(`${url}/readyz`)
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

function envPort(value: string | undefined): number {
  if (!value) return 8080;
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65_535)
    throw new ValidationError("EE-CONFIG-INVALID", `EE_PORT: expected a port number, got "${value}"`);
  return Number(value);
}

/**
 * Writes the demo workload when a Docker engine answers: the busybox web server pushed to `npm start`'s local
 * registry (by tag in compose.yaml, by digest in compose-pinned.yaml) when docker-registry is installed, and built
 * from a local context (compose-build.yaml + context.tar) either way. Returns the lines that tell the user how to
 * deploy it, and how to stop the registry.
 */
async function prepareDemo(
  root: string,
  agentUrl: string,
): Promise<{ text: string; stop: () => Promise<void> }> {
  const none = async () => {};
  const docker = new Docker();
  const engine = await docker
    .ping()
    .then(() => true)
    .catch(() => false);
  if (!engine)
    return {
      text: "\n(No Docker engine answers on /var/run/docker.sock: deploys will fail with EE-WORKLOAD-ENGINE.)\n",
      stop: none,
    };
  if (!hasHostBusybox())
    return { text: "\n(Install busybox-static to get the demo workload.)\n", stop: none };
  const dir = join(root, "demo");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "compose-build.yaml"), demoCompose());
  writeFileSync(join(dir, "context.tar"), await busyboxContext());
  const rel = relative(process.cwd(), dir) || ".";
  const deploy = (compose: string, extra = "") =>
    `npx eectl deploy --app hello --compose ${rel}/${compose}${extra} --health-port ${DEMO_PORT} --wait`;
  const buildLines = `  ${deploy("compose-build.yaml", ` --context ${rel}/context.tar`)}`;
  const reach = `  curl -s ${agentUrl}/          # the agent's proxy → the workload
  npx eectl logs <agent id>        # its logs, relayed by the CP
  npx eectl deployments undeploy <deployment id> --wait   # stops it; deploying hello again instead updates it in place
`;
  if (!hasRegistry())
    return {
      text: `
Deploy a workload (a busybox web server, built from ${rel}/context.tar, on container port ${DEMO_PORT} with no
host port published), then reach it through the agent:
${buildLines}
${reach}(To deploy a pulled image instead: apt-get install docker-registry, then npm start again.)
`,
      stop: none,
    };
  const registry = await startDemoRegistry(docker, root);
  writeFileSync(join(dir, "compose.yaml"), demoCompose(registry.tagRef));
  writeFileSync(join(dir, "compose-pinned.yaml"), demoCompose(registry.digestRef));
  return {
    text: `
Deploy a workload (a busybox web server on container port ${DEMO_PORT}, no host port published), pulled from the
local registry at ${registry.tagRef.split("/")[0]} (the engine does not have it), then reach it through the agent:
  ${deploy("compose.yaml")}          # ${registry.tagRef}
  ${deploy("compose-pinned.yaml")}   # pinned by digest
${reach}Or build it from a local context instead of pulling it:
${buildLines}
`,
    stop: registry.stop,
  };
}
