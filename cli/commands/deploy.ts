// `eectl deploy` and `eectl preflight`: post a Compose workload (from a file, stdin or the app registry) for
// placement, optionally following it to healthy; preflight shows where it would go and why every other agent
// would not.
import { Command, Option } from "clipanion";
import type { Candidate, PreflightResult } from "../../contract/deployments.ts";
import type { DeploymentJson } from "../../contract/rest-responses.ts";
import { CliError } from "../../spec/errors.ts";
import { readInputFile } from "../input-file.ts";
import { OperatorCommand } from "../operator-command.ts";
import { jsonFlag, parsePositiveInt } from "../options.ts";
import { RestError } from "../rest-client.ts";
import { table } from "../table.ts";
import { healthFlags, healthSpec, readCompose } from "../workload-flags.ts";
import { DEFAULT_WAIT_S, outcome, waitForDeployment } from "./deployments.ts";

/** Agents and their placement reasons; with `chosen` given, a first column marks it with `*`. */
function candidatesTable(candidates: Candidate[], chosen?: string | null): string {
  const mark = chosen !== undefined;
  return table(
    [...(mark ? [""] : []), "AGENT", "VM", "SIZE", "DATACENTER", "STATE", "REASONS"],
    candidates.map((c) => [
      ...(mark ? [c.agent_id === chosen ? "*" : ""] : []),
      c.agent_id,
      c.vm_name ?? "-",
      c.node_size ?? "-",
      c.datacenter ?? "-",
      c.state,
      c.reasons.join(",") || (c.eligible ? "eligible" : "-"),
    ]),
  );
}

/** The --registry-auth file's JSON; the CP validates its shape (EE-REQ-INVALID), nothing of it is printed. */
async function readRegistryAuth(path: string): Promise<unknown> {
  const text = (await readInputFile(path, "--registry-auth")).toString("utf8");
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError("EE-CLI-FILE", `--registry-auth ${path}: not JSON`, { flag: "--registry-auth", path });
  }
}

/** The flags a deployment request and a preflight share; options must be class fields, hence a base class. */
abstract class DeploymentRequestCommand extends OperatorCommand {
  app = Option.String("--app", {
    required: true,
    description: "App name (with --compose), or NAME[@VERSION] of a registered app",
  });
  compose = Option.String("--compose", { description: "Compose file, or - for stdin" });
  contextTar = Option.String("--context", {
    description: "Build context: a tar archive for services with build:",
  });
  nodeSize = Option.String("--node-size", { description: "Only agents of this node_size" });
  datacenter = Option.String("--datacenter", {
    description: "Only agents in this datacenter (provider:zone)",
  });
  agent = Option.String("--agent", { description: "Only this agent (agt_…)" });
  healthPort = healthFlags.port();
  healthPath = healthFlags.path();
  healthTimeout = healthFlags.timeout();
  asJson = jsonFlag("Print JSON");

  async requestBody(): Promise<Record<string, unknown>> {
    const health = healthSpec(this.healthPort, this.healthPath, this.healthTimeout);
    return {
      app: this.app,
      ...(this.compose !== undefined ? { compose: await readCompose(this.compose, this.context.stdin) } : {}),
      ...(this.contextTar !== undefined
        ? { context: (await readInputFile(this.contextTar, "--context")).toString("base64") }
        : {}),
      ...(this.nodeSize !== undefined ? { node_size: this.nodeSize } : {}),
      ...(this.datacenter !== undefined ? { datacenter: this.datacenter } : {}),
      ...(this.agent !== undefined ? { agent_id: this.agent } : {}),
      ...(health ? { health } : {}),
    };
  }
}

export class DeployCommand extends DeploymentRequestCommand {
  static override paths = [["deploy"]];
  static override usage = Command.Usage({
    category: "Deployments",
    description: "Deploy a Compose workload to an attested agent",
    details: `
      The control plane validates the Compose file, places it on the least-loaded eligible agent (ties broken by a
      hash only the control plane can compute) and sends it there; this prints the deployment id and the agent.
      With \`--wait\` it follows the deployment, one line per step (pulling with its bytes, preparing, starting, gating, running), and exits 0 only when it ends healthy; a
      failed deployment prints its code and message and exits 1, and \`--timeout\` (default ${DEFAULT_WAIT_S} s)
      ends the wait with EE-CLI-TIMEOUT. \`--replace ID\` updates in place: the new deployment starts beside the
      healthy deployment ID (same app name) on its agent, and only once it passes its health gate does the agent's
      proxy switch to it and ID end undeployed; if it fails, ID keeps serving untouched. When no agent fits, every agent's EE-PLACE-* reasons are printed
      (with \`--json\`, in the error object's \`details.agents\`).
    `,
    examples: [
      ["From a Compose file", "eectl deploy --app web --compose compose.yaml --health-port 8080 --wait"],
      ["A registered app on a given node size", "eectl deploy --app web@1.2.0 --node-size tiny --wait"],
      [
        "Images from a private registry",
        `eectl deploy --app web --compose compose.yaml --registry-auth auth.json --wait   # auth.json: {"ghcr.io": {"username": "u", "password": "…"}}`,
      ],
      [
        "Update in place, without downtime",
        "eectl deploy --app web --compose compose-v2.yaml --health-port 8080 --replace d-0123456789abcdef --wait",
      ],
      [
        "Compose from stdin, idempotent for CI retries",
        "eectl deploy --app web --compose - --idempotency-key $CI_JOB_ID < compose.yaml",
      ],
    ],
  });
  idempotencyKey = Option.String("--idempotency-key", {
    description: "Retrying with the same key and body returns the first deployment instead of a new one",
  });
  wait = Option.Boolean("--wait", false, {
    description: "Follow the deployment until it is healthy or failed",
  });
  registryAuth = Option.String("--registry-auth", {
    description:
      'Registry credentials for pulls: a JSON file {"HOST[:PORT]": {"username", "password"}}; sealed to the agent, never shown',
  });
  timeout = Option.String("--timeout", {
    description: `Seconds to wait with --wait (default ${DEFAULT_WAIT_S})`,
  });
  replace = Option.String("--replace", {
    description: "Update in place: replace this healthy deployment (same app) once the new one is healthy",
  });

  async run(): Promise<number> {
    const timeoutS = parsePositiveInt(this.timeout, "--timeout") ?? DEFAULT_WAIT_S;
    const client = this.client();
    const body = await this.requestBody();
    if (this.replace !== undefined) body.replaces = this.replace;
    if (this.registryAuth !== undefined) body.registry_auth = await readRegistryAuth(this.registryAuth);
    const headers: Record<string, string> = this.idempotencyKey
      ? { "idempotency-key": this.idempotencyKey }
      : {};
    let placed: { deployment_id: string; agent_id: string; status: string; replayed: boolean };
    try {
      placed = await client.post("/api/v2/deployments", body, headers);
    } catch (err) {
      // With --json the error object carries every agent's reasons in its details; people get a table.
      if (this.asJson || !(err instanceof RestError) || err.code !== "EE-PLACE-NO-AGENT") throw err;
      const agents = (err.details as { agents?: Candidate[] } | undefined)?.agents ?? [];
      this.context.stderr.write(`eectl: ${err.code}: ${err.message}\n${candidatesTable(agents)}`);
      return 1;
    }
    if (!this.wait) {
      this.print(
        this.asJson,
        placed,
        (p) =>
          `deployment ${p.deployment_id} on ${p.agent_id} (${p.status}${p.replayed ? ", replayed" : ""})\n`,
      );
      return 0;
    }
    if (!this.asJson) this.context.stdout.write(`deployment ${placed.deployment_id} on ${placed.agent_id}\n`);
    const d: DeploymentJson = await waitForDeployment(client, placed.deployment_id, {
      final: ["healthy", "failed", "undeployed"],
      hoped: "healthy",
      timeoutS,
      out: this.context.stdout,
      quiet: this.asJson,
    });
    outcome(d, "healthy");
    if (this.asJson) this.json(d);
    else this.context.stdout.write(`deployment ${d.deployment_id} is healthy\n`);
    return 0;
  }
}

export class PreflightCommand extends DeploymentRequestCommand {
  static override paths = [["preflight"]];
  static override usage = Command.Usage({
    category: "Deployments",
    description: "Show where a deployment would be placed and why other agents would not; changes nothing",
    details: `
      Validates the request exactly as \`eectl deploy\` would and lists every agent with its EE-PLACE-* reasons,
      the chosen one marked with *. Exits 0 when an agent fits, 1 when none does.
    `,
    examples: [
      ["Check a Compose file", "eectl preflight --app web --compose compose.yaml"],
      ["Why is no llm node free?", "eectl preflight --app web@1.2.0 --node-size llm"],
      ["Raw diagnosis as JSON", "eectl preflight --app web --compose compose.yaml --json"],
    ],
  });

  async run(): Promise<number> {
    const r = await this.client().post<PreflightResult>("/api/v2/preflight", await this.requestBody());
    if (this.asJson) {
      this.json(r);
      return r.ok ? 0 : 1;
    }
    const { placement: p } = r;
    const out = this.context.stdout;
    out.write(`app: ${r.app}${r.app_version ? `@${r.app_version}` : ""}\n`);
    out.write(`compose_hash: ${r.compose_hash}\nservices: ${r.services.join(", ")}\n`);
    out.write(
      `placement: ${p.chosen ? `${p.chosen.agent_id} (${p.chosen.vm_name ?? "-"})` : "no agent fits"}`,
    );
    out.write(` — ${p.considered} considered\n`);
    out.write(candidatesTable(p.candidates, p.chosen?.agent_id ?? null));
    const counts = Object.entries(p.counts);
    if (counts.length) out.write(`excluded: ${counts.map(([code, n]) => `${code} ${n}`).join(", ")}\n`);
    return r.ok ? 0 : 1;
  }
}
