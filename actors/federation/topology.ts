// Federation names, in one place: datacenter ids, JetStream domains, streams, subjects and deliver prefixes.
// The server configs (server-config.ts) and both sync sides (dc-link.ts, master-link.ts) derive every name from
// here, so an allow-list and the stream it guards cannot drift apart (a mismatch leaves a mirror silently empty).
// Imports spec/errors only.
import { ValidationError } from "../../spec/errors.ts";

/** The hub's JetStream domain: the master's nats-server. */
export const HUB_DOMAIN = "hub";
/** The dc id the master's direct agents carry. */
export const MASTER_DC = "master";
/** The NATS account every EasyEnclave link lives in (generated configs). */
export const ACCOUNT = "EE";

/**
 * A dc id is a JetStream domain, a subject token, part of stream names and of environment variable names (its
 * leaf password), so it is kept to lowercase letters, digits and inner hyphens; `hub` and `master` are taken.
 */
const DC_ID = /^[a-z](?:[a-z0-9-]{0,30}[a-z0-9])?$/;

export function checkDcId(id: string, flag = "--dc-id"): string {
  if (!DC_ID.test(id))
    throw new ValidationError(
      "EE-CONFIG-INVALID",
      `${flag}: a dc id is 1-32 lowercase letters, digits and inner hyphens, starting with a letter; got "${id}"`,
    );
  if (id === HUB_DOMAIN || id === MASTER_DC)
    throw new ValidationError("EE-CONFIG-INVALID", `${flag}: "${id}" is reserved`);
  return id;
}

/** The dc's own stream (in its domain): every event of its outbox and its health summaries. */
export const UP_STREAM = "EE_UP";
/** The dc's local mirror of its command stream on the hub. */
export const DOWN_STREAM = "EE_DOWN";
/** The dc's durable consumer of DOWN_STREAM: commands are acked once executed. */
export const DOWN_CONSUMER = "cp";

export const upSubjects = (dc: string) => `ee.up.${dc}.>`;
/** One outbox event (agent, attestation, deployment): Nats-Msg-Id `<dc>:<event id>`. */
export const upEventSubject = (dc: string) => `ee.up.${dc}.event`;
/** The periodic health summary (counts, time): keeps the mirror active and measures lag. */
export const upHealthSubject = (dc: string) => `ee.up.${dc}.health`;
/** On the hub: the mirror of a dc's EE_UP. */
export const hubUpMirror = (dc: string) => `EE_UP_${envToken(dc)}`;
/** On the hub: the commands for one dc (deploy, undeploy), mirrored by that dc into its EE_DOWN. */
export const hubDownStream = (dc: string) => `EE_DOWN_${envToken(dc)}`;
export const downSubjects = (dc: string) => `ee.down.${dc}.>`;
export const downSubject = (dc: string, command: "deploy" | "undeploy") => `ee.down.${dc}.${command}`;
/** Core NATS request a dc sends every few seconds: the master learns of it, creates its streams, kicks mirrors. */
export const helloSubject = (dc: string) => `ee.hello.${dc}`;
export const HELLO_WILDCARD = "ee.hello.*";
/** Where a mirror's messages cross the leaf link (pinned per dc so the allow-lists can name them). */
export const upDeliver = (dc: string) => `ee.deliver.${dc}.up`;
export const downDeliver = (dc: string) => `ee.deliver.${dc}.down`;
export const jsApi = (domain: string) => `$JS.${domain}.API`;

/** On the hub: the KV bucket of desired state (master → dc), written by the master only. */
export const DESIRED_BUCKET = "ee_desired";
/** The JetStream stream behind that bucket (what a dc's mirror names). */
export const HUB_DESIRED_STREAM = `KV_${DESIRED_BUCKET}`;
/** The one key: the whole desired state as one signed snapshot, so a snapshot sequence orders all of it. */
export const DESIRED_KEY = "snapshot";
export const desiredSubject = `$KV.${DESIRED_BUCKET}.${DESIRED_KEY}`;
/** The dc's local, read-only mirror of the hub's desired-state bucket. */
export const DESIRED_STREAM = "EE_DESIRED";
export const desiredDeliver = (dc: string) => `ee.deliver.${dc}.desired`;

/** Stream names and environment variables take no hyphen: `eu-west` becomes `EU_WEST`. */
export function envToken(dc: string): string {
  return dc.toUpperCase().replaceAll("-", "_");
}

/**
 * Core NATS, master → dc: a read of one of the dc's agents relayed on demand (relay-messages.ts). The dc's leaf
 * may receive only its own `ee.relay.<dc>.>` and send only into its own reply space `ee.reply.<dc>.>`.
 */
export const relaySubjects = (dc: string) => `ee.relay.${dc}.>`;
export const relayReadSubject = (dc: string) => `ee.relay.${dc}.read`;
/** The master's keep-alives, acknowledgements and cancels of the reads it has open on a dc. */
export const relayControlSubject = (dc: string) => `ee.relay.${dc}.ctl`;
export const relayReplySubjects = (dc: string) => `ee.reply.${dc}.>`;
/** Where the dc's answers to one relayed read go (the master listens on it for that read only). */
export const relayReplySubject = (dc: string, id: string) => `ee.reply.${dc}.${id}`;
