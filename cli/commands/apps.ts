// `eectl apps list|register`: the control plane's app registry (name@version → Compose file and health spec),
// so deployments can name a vetted version instead of posting Compose each time.
import { Command, Option } from "clipanion";
import { ValidationError } from "../../spec/errors.ts";
import { OperatorCommand } from "../operator-command.ts";
import { jsonFlag } from "../options.ts";
import { table } from "../table.ts";
import { healthFlags, healthSpec, readCompose } from "../workload-flags.ts";

interface AppJson {
  name: string;
  version: string;
  ref: string;
  compose_hash: string;
  health: { port: number; path: string; timeout_s: number } | null;
  created_at: string;
}

export class AppsListCommand extends OperatorCommand {
  static override paths = [["apps", "list"]];
  static override usage = Command.Usage({
    category: "Deployments",
    description: "List the registered apps (name@version)",
    examples: [
      ["Table", "eectl apps list"],
      ["As JSON", "eectl apps list --json"],
    ],
  });
  asJson = jsonFlag();

  async run(): Promise<number> {
    const body = await this.client().get<{ apps: AppJson[] }>("/api/v2/apps");
    this.print(this.asJson, body, ({ apps }) =>
      table(
        ["APP", "COMPOSE HASH", "HEALTH", "CREATED"],
        apps.map((a) => [
          a.ref,
          `${a.compose_hash.slice(0, 16)}…`,
          a.health ? `:${a.health.port}${a.health.path} ${a.health.timeout_s}s` : "-",
          a.created_at,
        ]),
      ),
    );
    return 0;
  }
}

export class AppsRegisterCommand extends OperatorCommand {
  static override paths = [["apps", "register"]];
  static override usage = Command.Usage({
    category: "Deployments",
    description:
      "Register a Compose file as NAME@VERSION, to deploy later with `eectl deploy --app NAME@VERSION`",
    details: "The Compose file is validated now; a version, once registered, names that exact file.",
    examples: [
      ["Register", "eectl apps register web@1.2.0 --compose compose.yaml --health-port 8080"],
      ["From stdin", "eectl apps register web@1.2.1 --compose - < compose.yaml"],
    ],
  });
  ref = Option.String({ name: "NAME@VERSION" });
  compose = Option.String("--compose", { required: true, description: "Compose file, or - for stdin" });
  healthPort = healthFlags.port();
  healthPath = healthFlags.path();
  healthTimeout = healthFlags.timeout();
  asJson = jsonFlag("Print the registered app as JSON");

  async run(): Promise<number> {
    const at = this.ref.lastIndexOf("@");
    if (at <= 0 || at === this.ref.length - 1)
      throw new ValidationError("EE-CONFIG-INVALID", `expected NAME@VERSION, got "${this.ref}"`);
    const health = healthSpec(this.healthPort, this.healthPath, this.healthTimeout);
    const app = await this.client().post<AppJson>("/api/v2/apps", {
      name: this.ref.slice(0, at),
      version: this.ref.slice(at + 1),
      compose: await readCompose(this.compose, this.context.stdin),
      ...(health ? { health } : {}),
    });
    this.print(this.asJson, app, (a) => `registered ${a.ref} (compose ${a.compose_hash})\n`);
    return 0;
  }
}
