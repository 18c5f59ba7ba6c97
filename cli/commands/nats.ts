// `eectl nats config --role hub|leaf`: prints a nats-server config for a federation (actors/federation/
// server-config.ts): the hub the master CP uses, or a dc's leaf. Allow-list permissions per dc, optional mTLS
// with verify_and_map by certificate SAN; passwords stay in the environment of the server, never in the file.
// Imports cp/operator (the federation's topology and server configs), spec/errors, cli/base.
import { Command, Option } from "clipanion";
import { checkDcId, hubConfig, type LinkAuth, leafConfig } from "../../cp/operator.ts";
import { ValidationError } from "../../spec/errors.ts";
import { EeCommand } from "../base.ts";
import { hostPortFlag } from "../options.ts";

export class NatsConfigCommand extends EeCommand {
  static override paths = [["nats", "config"]];
  static override usage = Command.Usage({
    category: "Federation",
    description: "Print a nats-server config for the federation hub or a dc's leaf",
    details: `
      \`--role hub\`: the master's nats-server, JetStream domain \`hub\`, with a leafnode listener. Each dc that may
      connect is named with \`--dc\` and gets a user whose permissions are allow-lists: its own mirrors' API
      calls, deliver subjects and flow control, its hello, replies; nothing else (a deny-list left the hub's KV
      and stream deletion open in the drills, docs/federation.md).

      \`--role leaf\`: a dc's nats-server in JetStream domain \`--dc-id\`, dialling out to the hub (a dc needs no
      inbound port). Its dc CP connects to it locally.

      \`--auth password\` (default): the CP's password comes from $EE_NATS_CP_PASSWORD, each leaf's from
      EE_NATS_LEAF_<DC>_PASSWORD on the hub and, on the leaf, inside $EE_NATS_HUB_URL
      (nats-leaf://DC:PASSWORD@HUB:PORT); nats-server reads them at start. \`--auth tls\`: the leaf link is
      mutual TLS and the hub maps a leaf's certificate to its user by the SAN \`<dc>.leaf.ee\`. \`--auth none\`:
      no users at all, for loopback tests only.

      Tested with nats-server 2.9 (Debian bookworm); run a current 2.10+ in production.
    `,
    examples: [
      [
        "A hub for two dcs",
        "eectl nats config --role hub --listen 127.0.0.1:4222 --leaf-listen 0.0.0.0:7422 --store /var/lib/nats --dc eu-west --dc us-east > hub.conf",
      ],
      [
        "The eu-west leaf",
        "eectl nats config --role leaf --dc-id eu-west --listen 127.0.0.1:4222 --hub hub.example:7422 --store /var/lib/nats > leaf.conf",
      ],
    ],
  });

  role = Option.String("--role", { required: true, description: "hub or leaf" });
  listen = Option.String("--listen", "127.0.0.1:4222", {
    description: "HOST:PORT for clients (the local CP)",
  });
  http = Option.String("--http", { description: "HOST:PORT for the monitoring endpoint (/jsz, /leafz)" });
  store = Option.String("--store", { required: true, description: "JetStream store directory" });
  leafListen = Option.String("--leaf-listen", { description: "Hub: HOST:PORT for leaf connections" });
  dcs = Option.Array("--dc", [], { description: "Hub: a dc that may connect (repeat)" });
  dcId = Option.String("--dc-id", { description: "Leaf: this dc's id, its JetStream domain" });
  hub = Option.String("--hub", { description: "Leaf: the hub's leafnode HOST:PORT" });
  auth = Option.String("--auth", "password", { description: "password (default), tls or none" });
  tlsCert = Option.String("--tls-cert", { description: "With --auth tls: this server's certificate" });
  tlsKey = Option.String("--tls-key", { description: "With --auth tls: its private key" });
  tlsCa = Option.String("--tls-ca", { description: "With --auth tls: the CA both ends verify by" });

  async run(): Promise<number> {
    if (this.auth !== "password" && this.auth !== "tls" && this.auth !== "none")
      throw new ValidationError(
        "EE-CONFIG-INVALID",
        `--auth: expected password, tls or none, got "${this.auth}"`,
      );
    const auth: LinkAuth = this.auth;
    hostPortFlag(this.listen, "--listen");
    if (this.http) hostPortFlag(this.http, "--http");
    const tlsGiven = [this.tlsCert, this.tlsKey, this.tlsCa];
    if (tlsGiven.some((f) => f !== undefined) && tlsGiven.some((f) => f === undefined))
      throw new ValidationError("EE-CONFIG-INVALID", "--tls-cert, --tls-key and --tls-ca go together");
    const tls = this.tlsCert ? { cert: this.tlsCert, key: this.tlsKey!, ca: this.tlsCa! } : undefined;
    const common = {
      listen: this.listen,
      storeDir: this.store,
      auth,
      ...(this.http ? { http: this.http } : {}),
      ...(tls ? { tls } : {}),
    };
    let text: string;
    if (this.role === "hub") {
      if (this.dcId !== undefined || this.hub !== undefined)
        throw new ValidationError("EE-CONFIG-INVALID", "--dc-id and --hub go with --role leaf");
      if (this.leafListen === undefined)
        throw new ValidationError("EE-CONFIG-INVALID", "--role hub needs --leaf-listen HOST:PORT");
      hostPortFlag(this.leafListen, "--leaf-listen");
      text = hubConfig({
        ...common,
        leafListen: this.leafListen,
        dcs: this.dcs.map((d) => checkDcId(d, "--dc")),
      });
    } else if (this.role === "leaf") {
      if (this.leafListen !== undefined || this.dcs.length > 0)
        throw new ValidationError("EE-CONFIG-INVALID", "--leaf-listen and --dc go with --role hub");
      if (this.dcId === undefined)
        throw new ValidationError("EE-CONFIG-INVALID", "--role leaf needs --dc-id ID");
      if (this.hub !== undefined) hostPortFlag(this.hub, "--hub");
      text = leafConfig({ ...common, dcId: checkDcId(this.dcId), ...(this.hub ? { hub: this.hub } : {}) });
    } else throw new ValidationError("EE-CONFIG-INVALID", `--role: expected hub or leaf, got "${this.role}"`);
    this.context.stdout.write(text);
    return 0;
  }
}
