// nats-server configs for a federation (`eectl nats config`): the hub (the master's server, JetStream domain
// `hub`, leafnode listener) and a leaf (one per dc, its own domain, dialling out to the hub). Pure text
// generation from topology.ts names; secrets never appear in the output: passwords are environment variables
// the server resolves at start (EE_NATS_CP_PASSWORD and the like), and with mTLS the leaf users are certificate SANs.
// Why allow-lists: a deny-list left `$JS.hub.API.$KV...` and stream deletion open to a dc in the research drills
// (../shared/research/federation-nats.md); each leaf user may only do what its mirrors need.
// Imports topology.ts and spec/errors only.
import { ValidationError } from "../../spec/errors.ts";
import {
  ACCOUNT,
  desiredDeliver,
  downDeliver,
  envToken,
  HUB_DESIRED_STREAM,
  HUB_DOMAIN,
  helloSubject,
  hubDownStream,
  jsApi,
  relayReplySubjects,
  relaySubjects,
  UP_STREAM,
  upDeliver,
} from "./topology.ts";

export type LinkAuth = "password" | "tls" | "none";

export interface TlsFiles {
  cert: string;
  key: string;
  ca: string;
}

export interface HubConfigOptions {
  listen: string;
  leafListen: string;
  storeDir: string;
  http?: string;
  dcs: readonly string[];
  auth: LinkAuth;
  tls?: TlsFiles;
}

export interface LeafConfigOptions {
  dcId: string;
  listen: string;
  storeDir: string;
  http?: string;
  /** The hub's leafnode address (HOST:PORT); with password auth the URL, credentials included, is $EE_NATS_HUB_URL. */
  hub?: string;
  auth: LinkAuth;
  tls?: TlsFiles;
}

/** The local CP's password on either server (user `master` on the hub, `cp` on a leaf). */
export const CP_PASSWORD_ENV = "EE_NATS_CP_PASSWORD";
/** A leaf's password on the hub, per dc. */
export const leafPasswordEnv = (dc: string) => `EE_NATS_LEAF_${envToken(dc)}_PASSWORD`;
/** On a leaf with password auth: nats-leaf://DC:PASSWORD@HUB:PORT. */
export const HUB_URL_ENV = "EE_NATS_HUB_URL";
/** With mTLS the hub maps a leaf's certificate to its user by this SAN (verify_and_map). */
export const leafSan = (dc: string) => `${dc}.leaf.ee`;

const q = (s: string) => JSON.stringify(s);

/**
 * What a dc's leaf connection may carry, from the hub's side: `publish` is what the leaf may send into the hub,
 * `subscribe` what the hub may send down to it. Only its own mirrors' API calls, deliver subjects and flow
 * control, its hello, and replies; of relayed reads (relay-*.ts), only its own requests in and its own reply space
 * out (it can neither read another dc's nor send one). Its mirror of the desired-state bucket reads it through the same consumer
 * calls (no `$KV.` publish, so the bucket is read-only to it). Nothing else of `$JS.hub.API` (no KV writes, no
 * stream deletion), nothing of another dc.
 */
export function leafPermissions(dc: string): { publish: string[]; subscribe: string[] } {
  const down = hubDownStream(dc);
  const hubApi = jsApi(HUB_DOMAIN);
  const dcApi = jsApi(dc);
  return {
    publish: [
      `${hubApi}.CONSUMER.CREATE.${down}`,
      `${hubApi}.CONSUMER.CREATE.${down}.>`,
      `${hubApi}.CONSUMER.DELETE.${down}.>`,
      `${hubApi}.STREAM.INFO.${down}`,
      `$JS.FC.${down}.>`,
      `${hubApi}.CONSUMER.CREATE.${HUB_DESIRED_STREAM}`,
      `${hubApi}.CONSUMER.CREATE.${HUB_DESIRED_STREAM}.>`,
      `${hubApi}.CONSUMER.DELETE.${HUB_DESIRED_STREAM}.>`,
      `${hubApi}.STREAM.INFO.${HUB_DESIRED_STREAM}`,
      `$JS.FC.${HUB_DESIRED_STREAM}.>`,
      `${upDeliver(dc)}.>`,
      helloSubject(dc),
      relayReplySubjects(dc),
      "$JSC.R.>",
      "_INBOX.>",
    ],
    subscribe: [
      `${dcApi}.CONSUMER.CREATE.${UP_STREAM}`,
      `${dcApi}.CONSUMER.CREATE.${UP_STREAM}.>`,
      `${dcApi}.CONSUMER.DELETE.${UP_STREAM}.>`,
      `${dcApi}.STREAM.INFO.${UP_STREAM}`,
      `$JS.FC.${UP_STREAM}.>`,
      `${downDeliver(dc)}.>`,
      `${desiredDeliver(dc)}.>`,
      relaySubjects(dc),
      "$JSC.R.>",
      "_INBOX.>",
    ],
  };
}

function checkTls(auth: LinkAuth, tls: TlsFiles | undefined): TlsFiles | undefined {
  if (auth === "tls" && !tls)
    throw new ValidationError("EE-CONFIG-INVALID", "--auth tls needs --tls-cert, --tls-key and --tls-ca");
  if (auth !== "tls" && tls)
    throw new ValidationError("EE-CONFIG-INVALID", "--tls-cert/--tls-key/--tls-ca go with --auth tls");
  return tls;
}

function tlsBlock(tls: TlsFiles, verifyAndMap: boolean): string {
  return `tls { cert_file: ${q(tls.cert)}, key_file: ${q(tls.key)}, ca_file: ${q(tls.ca)}${verifyAndMap ? ", verify_and_map: true, timeout: 2" : ""} }`;
}

function common(name: string, o: { listen: string; http?: string; storeDir: string }, domain: string) {
  return [
    `server_name: ${q(name)}`,
    `listen: ${q(o.listen)}`,
    ...(o.http ? [`http: ${q(o.http)}`] : []),
    "# Half-open links are noticed within seconds (the research's drills used these).",
    'ping_interval: "2s"',
    "ping_max: 2",
    `jetstream { store_dir: ${q(o.storeDir)}, domain: ${domain} }`,
  ];
}

function accounts(users: string[]): string[] {
  return [
    "accounts {",
    "  SYS {}",
    `  ${ACCOUNT} {`,
    "    jetstream: enabled",
    "    users: [",
    ...users.map((u) => `      ${u}`),
    "    ]",
    "  }",
    "}",
    "system_account: SYS",
  ];
}

export function hubConfig(o: HubConfigOptions): string {
  const tls = checkTls(o.auth, o.tls);
  if (o.auth !== "none" && o.dcs.length === 0)
    throw new ValidationError("EE-CONFIG-INVALID", "--dc: name every dc that may connect (repeat the flag)");
  const lines = [
    `# nats-server config for the EasyEnclave hub (JetStream domain ${HUB_DOMAIN}), from \`eectl nats config --role hub\`.`,
    ...(o.auth === "none"
      ? ["# --auth none: no users, no permissions. Loopback tests only."]
      : [
          `# Environment at start: ${CP_PASSWORD_ENV} (the master CP's password, user master)${
            o.auth === "password" ? `, ${o.dcs.map(leafPasswordEnv).join(", ")}` : ""
          }.`,
        ]),
    ...common(HUB_DOMAIN, o, HUB_DOMAIN),
    `leafnodes {\n  listen: ${q(o.leafListen)}${tls ? `\n  ${tlsBlock(tls, true)}` : ""}\n}`,
  ];
  if (o.auth !== "none") {
    const users = [`{user: master, password: $${CP_PASSWORD_ENV}}`];
    for (const dc of o.dcs) {
      const p = leafPermissions(dc);
      const who =
        o.auth === "tls" ? `user: ${q(leafSan(dc))}` : `user: ${q(dc)}, password: $${leafPasswordEnv(dc)}`;
      users.push(
        `{${who}, permissions: {`,
        `  publish: { allow: [${p.publish.map(q).join(", ")}] }`,
        `  subscribe: { allow: [${p.subscribe.map(q).join(", ")}] }`,
        "}}",
      );
    }
    lines.push(...accounts(users));
  }
  return `${lines.join("\n")}\n`;
}

export function leafConfig(o: LeafConfigOptions): string {
  const tls = checkTls(o.auth, o.tls);
  if (o.auth !== "password" && !o.hub)
    throw new ValidationError("EE-CONFIG-INVALID", "--hub HOST:PORT: the hub's leafnode address");
  const remote =
    o.auth === "password"
      ? `urls: [ $${HUB_URL_ENV} ]`
      : `urls: [${q(`nats-leaf://${o.hub}`)}]${tls ? `, ${tlsBlock(tls, false)}` : ""}`;
  const lines = [
    `# nats-server config for EasyEnclave dc ${o.dcId} (JetStream domain ${o.dcId}), from \`eectl nats config --role leaf\`.`,
    ...(o.auth === "none"
      ? ["# --auth none: no users, no permissions. Loopback tests only."]
      : [
          `# Environment at start: ${CP_PASSWORD_ENV} (the dc CP's password, user cp)${
            o.auth === "password"
              ? `, ${HUB_URL_ENV} (nats-leaf://${o.dcId}:PASSWORD@${o.hub ?? "HUB:7422"}, PASSWORD = the hub's ${leafPasswordEnv(o.dcId)})`
              : ""
          }.`,
        ]),
    ...common(o.dcId, o, o.dcId),
  ];
  if (o.auth === "none") lines.push(`leafnodes { reconnect: 2, remotes: [ { ${remote} } ] }`);
  else {
    lines.push(...accounts([`{user: cp, password: $${CP_PASSWORD_ENV}}`]));
    lines.push(`leafnodes { reconnect: 2, remotes: [ { ${remote}, account: ${ACCOUNT} } ] }`);
  }
  return `${lines.join("\n")}\n`;
}
