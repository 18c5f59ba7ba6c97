// `eectl deployments list|show|undeploy`, and the wait shared with `eectl deploy --wait`: polling a deployment
// until a final status while printing each new progress step (a live line per step on a terminal, plain
// `step NAME` lines otherwise).

import type { Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { Command, Option } from "clipanion";
import type { DeploymentJson } from "../../contract/rest-responses.ts";
import { errorFromCode } from "../../spec/errors.ts";
import { OperatorCommand } from "../operator-command.ts";
import { jsonFlag, parsePositiveInt } from "../options.ts";
import { type RestClient, RestError } from "../rest-client.ts";
import { age, table } from "../table.ts";

/** A deployment as the REST API returns it. */
type ProgressJson = DeploymentJson["progress"][number];

const POLL_MS = 500;
export const DEFAULT_WAIT_S = 300;

export const deploymentPath = (id: string) => `/api/v2/deployments/${encodeURIComponent(id)}`;

/**
 * Prints progress steps as they appear: one plain `step NAME` line each, or on a TTY a live line per step,
 * finished with ✓ and how long the step took once the next one starts (✗ when the wait ends badly).
 */
class StepPrinter {
  readonly #out: Writable;
  readonly #tty: boolean;
  #last: ProgressJson | null;
  /** On a TTY: the step whose line is still open (no newline yet). */
  #open: ProgressJson | null = null;
  /** When the first step this printer showed happened (server clock, like every `at`). */
  #since: number | null = null;

  constructor(out: Writable, tty: boolean, shown: ProgressJson | null) {
    this.#out = out;
    this.#tty = tty;
    this.#last = shown;
  }

  show(d: DeploymentJson): void {
    const from = this.#last ? lastIndexOf(d.progress, this.#last) + 1 : 0;
    for (const p of d.progress.slice(from)) {
      this.#since ??= Date.parse(p.at);
      if (this.#tty) {
        this.#close("✓", seconds(Date.parse(p.at) - Date.parse(this.#open?.at ?? p.at)));
        this.#open = p;
        this.#out.write(`  … ${label(p)}`);
      } else {
        this.#out.write(`step ${label(p)}\n`);
      }
      this.#last = p;
    }
    // A pull's bytes grow on the same entry: the live line follows them.
    const latest = d.progress.at(-1);
    const open = this.#open;
    if (this.#tty && open && latest && latest.step === open.step && latest.at === open.at) {
      if (latest.bytes_done !== open.bytes_done) {
        this.#open = latest;
        this.#out.write(`\r\x1b[2K  … ${label(latest)}`);
      }
    }
  }

  /** Finishes the open live line: ✓ when the wait ended as hoped, ✗ otherwise; with the total time. */
  end(ok: boolean): void {
    if (this.#open === null) return;
    this.#close(ok ? "✓" : "✗", `${seconds(Date.parse(this.#open.at) - (this.#since ?? 0))} in all`);
  }

  #close(mark: string, time: string): void {
    if (this.#open === null) return;
    this.#out.write(`\r\x1b[2K  ${mark} ${label(this.#open)}  ${time}\n`);
    this.#open = null;
  }
}

const mb = (n: number) => (n / 1e6).toFixed(1);
/** A step, its message, and on `pulling` the bytes so far (updated in place on a TTY). */
const label = (p: ProgressJson) =>
  `${p.step}${p.bytes_total ? ` ${mb(p.bytes_done ?? 0)}/${mb(p.bytes_total)} MB` : ""}${p.message ? `: ${p.message}` : ""}`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

function lastIndexOf(progress: ProgressJson[], entry: ProgressJson): number {
  for (let i = progress.length - 1; i >= 0; i--)
    if (progress[i]!.step === entry.step && progress[i]!.at === entry.at) return i;
  // The list is bounded on the server; an entry that scrolled out means everything shown now is new.
  return -1;
}

export interface WaitOptions {
  /** Statuses that end the wait. */
  final: string[];
  /** The final status that counts as success (it decides the live line's mark). */
  hoped: string;
  timeoutS: number;
  out: Writable;
  /** Print no steps (--json). */
  quiet: boolean;
  /** The last step the caller has already shown; only later ones are printed. */
  shown?: ProgressJson | null;
}

/** Polls the deployment until its status is one of `o.final`, printing new steps. Throws EE-CLI-TIMEOUT. */
export async function waitForDeployment(
  client: RestClient,
  id: string,
  o: WaitOptions,
): Promise<DeploymentJson> {
  const printer = new StepPrinter(o.out, (o.out as { isTTY?: boolean }).isTTY === true, o.shown ?? null);
  const deadline = Date.now() + o.timeoutS * 1000;
  for (;;) {
    const d = await client.get<DeploymentJson>(deploymentPath(id));
    if (!o.quiet) printer.show(d);
    if (o.final.includes(d.status)) {
      if (!o.quiet) printer.end(d.status === o.hoped);
      return d;
    }
    if (Date.now() >= deadline) {
      if (!o.quiet) printer.end(false);
      throw new RestError(
        0,
        "EE-CLI-TIMEOUT",
        `deployment ${id} is still ${d.status} after ${o.timeoutS} s (it goes on; see eectl deployments show ${id})`,
      );
    }
    await sleep(POLL_MS);
  }
}

/**
 * Ends a wait: returns when the deployment reached `hoped`, else throws its code and message (the usual error
 * line; with --json the error object, the deployment in `details.deployment`).
 */
export function outcome(d: DeploymentJson, hoped: string): void {
  if (d.status === hoped) return;
  throw errorFromCode(
    d.code ?? "EE-INTERNAL",
    d.message ?? `deployment ${d.deployment_id} ended ${d.status}, not ${hoped}`,
    { deployment: d },
  );
}

export class DeploymentsListCommand extends OperatorCommand {
  static override paths = [["deployments", "list"]];
  static override usage = Command.Usage({
    category: "Deployments",
    description: "List deployments, newest first",
    details: "Shows each deployment's id, app, status, agent and when it last changed.",
    examples: [
      ["Table", "eectl deployments list"],
      ["Failed ones as JSON", "eectl deployments list --status failed --json"],
      ["The last five", "eectl deployments list --limit 5"],
    ],
  });
  status = Option.String("--status", {
    description: "Only this status (pending, deploying, healthy, failed, undeploying, undeployed)",
  });
  limit = Option.String("--limit", { description: "At most this many (1..1000)" });
  asJson = jsonFlag();

  async run(): Promise<number> {
    const q = new URLSearchParams();
    if (this.status) q.set("status", this.status);
    const limit = parsePositiveInt(this.limit, "--limit");
    if (limit !== undefined) q.set("limit", String(limit));
    const query = q.toString() ? `?${q}` : "";
    const body = await this.client().get<{ deployments: DeploymentJson[] }>(`/api/v2/deployments${query}`);
    this.print(this.asJson, body, ({ deployments }) =>
      table(
        ["DEPLOYMENT", "APP", "STATUS", "AGENT", "UPDATED"],
        deployments.map((d) => [
          d.deployment_id,
          appRef(d),
          d.status + (d.code ? ` (${d.code})` : ""),
          d.agent_id,
          age(d.updated_at),
        ]),
      ),
    );
    return 0;
  }
}

export class DeploymentsShowCommand extends OperatorCommand {
  static override paths = [["deployments", "show"]];
  static override usage = Command.Usage({
    category: "Deployments",
    description: "Show one deployment: status, failure code, compose hash, images and every progress step",
    examples: [
      ["Show", "eectl deployments show d-0123456789abcdef"],
      ["As JSON", "eectl deployments show d-0123456789abcdef --json"],
    ],
  });
  id = Option.String({ name: "DEPLOYMENT_ID" });
  asJson = jsonFlag();

  async run(): Promise<number> {
    const d = await this.client().get<DeploymentJson>(deploymentPath(this.id));
    this.print(this.asJson, d, showText);
    return 0;
  }
}

/** `eectl deployments show` for people: one `key: value` line per field, then every progress step. */
function showText(d: DeploymentJson): string {
  const fields: [string, string][] = [
    ["deployment_id", d.deployment_id],
    ["app", appRef(d)],
    ["agent_id", d.agent_id],
    ["status", d.status],
    ...(d.code ? ([["code", d.code]] as [string, string][]) : []),
    ...(d.message ? ([["message", d.message]] as [string, string][]) : []),
    ["compose_hash", d.compose_hash ?? "-"],
    ["images", d.images.map((i) => `${i.service}=${i.ref} (${i.digest})`).join(", ") || "-"],
    ["request", JSON.stringify(d.request)],
    ["created_at", d.created_at],
    ["updated_at", d.updated_at],
  ];
  const out = fields.map(([k, v]) => `${k}: ${v}`);
  out.push("progress:");
  for (const p of d.progress) out.push(`  ${p.at}  ${p.step}${p.message ? `  ${p.message}` : ""}`);
  return `${out.join("\n")}\n`;
}

export class DeploymentsUndeployCommand extends OperatorCommand {
  static override paths = [["deployments", "undeploy"]];
  static override usage = Command.Usage({
    category: "Deployments",
    description: "Stop and remove a deployment's workload on its agent",
    details:
      "Returns once the control plane accepted the request; with --wait, follows it until the agent reports " +
      "everything removed (exit 0) or the deployment ends otherwise (exit 1).",
    examples: [
      ["Undeploy", "eectl deployments undeploy d-0123456789abcdef"],
      ["And wait until it is gone", "eectl deployments undeploy d-0123456789abcdef --wait --timeout 60"],
    ],
  });
  id = Option.String({ name: "DEPLOYMENT_ID" });
  wait = Option.Boolean("--wait", false, { description: "Wait until the deployment is undeployed" });
  timeout = Option.String("--timeout", {
    description: `Seconds to wait with --wait (default ${DEFAULT_WAIT_S})`,
  });
  asJson = jsonFlag("Print the deployment as JSON");

  async run(): Promise<number> {
    const timeoutS = parsePositiveInt(this.timeout, "--timeout") ?? DEFAULT_WAIT_S;
    const client = this.client();
    let d = await client.post<DeploymentJson>(`${deploymentPath(this.id)}/undeploy`, {});
    if (!this.asJson) this.context.stdout.write(`undeploying ${d.deployment_id} on ${d.agent_id}\n`);
    if (this.wait)
      d = await waitForDeployment(client, this.id, {
        final: ["undeployed", "failed"],
        hoped: "undeployed",
        timeoutS,
        out: this.context.stdout,
        quiet: this.asJson,
        shown: d.progress.at(-1) ?? null,
      });
    if (this.wait) outcome(d, "undeployed");
    if (this.asJson) this.json(d);
    else if (this.wait) this.context.stdout.write(`deployment ${d.deployment_id} is undeployed\n`);
    return 0;
  }
}

const appRef = (d: DeploymentJson) => (d.app_version ? `${d.app}@${d.app_version}` : d.app);
