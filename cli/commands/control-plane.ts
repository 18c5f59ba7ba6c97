// `eectl control-plane`: runs the control plane (REST + agent WebSocket on one port) until SIGINT/SIGTERM.
// The control plane itself is loaded when the command runs, so `--help` and the other commands stay fast.
import { Command, Option } from "clipanion";
import type { QuoteProvider } from "../../attestation/providers/provider.ts";
import {
  BILLING_DEFAULTS,
  CAPACITY_DEFAULTS,
  CP_DEFAULTS,
  checkDcId,
  type FederationOptions,
  heartbeatFor,
  parseNodeSizes,
  READINESS_DEFAULTS,
} from "../../cp/operator.ts";
import type { Logger } from "../../lib/log.ts";
import type { ServerTls, ServerTlsFiles } from "../../lib/tls-files.ts";
import { ValidationError } from "../../spec/errors.ts";
import { adminTokenFrom } from "../admin-token-source.ts";
import { EeCommand } from "../base.ts";
import { oidcFlags, oidcVerifierConfig } from "../oidc-options.ts";
import { hostPortFlag, parseFraction, parsePositiveInt } from "../options.ts";
import { untilSignal } from "../signals.ts";

/** Below a second, a CP on a busy host would call agents stale for a scheduling hiccup. */
const MIN_STALE_AFTER_MS = 1000;

export class ControlPlaneCommand extends EeCommand {
  static override paths = [["control-plane"]];
  static override usage = Command.Usage({
    description: "Run the control plane",
    details: `
      Serves the REST API and the agent WebSocket (\`/api/v2/agents/connect\`) on one port, keeps its audit
      log in SQLite under the data dir, and holds one supervised actor per connected agent.

      The admin token is \`--admin-token-file\` (first line; refused if group or others can write the file,
      a warning if they can read it), else \`$EE_ADMIN_TOKEN\`, else the one stored by an earlier start, else one
      generated now. \`--admin-token\` still works but every local user sees it in \`ps\` (a warning says so). Only its SHA-256 digest is stored (DATA_DIR/admin-token.sha256), and only once the
      CP serves: a start that fails (a busy port) stores nothing. A generated token is printed once. Lost it?
      \`eectl admin-token rotate --data-dir DIR\` prints a new one; a running CP picks it up within a second.

      With \`--oidc-issuer\`, \`--oidc-audience\` and \`--oidc-jwks\` (all three), GitHub Actions jobs exchange their
      OIDC token at \`POST /api/v2/auth/oidc\` for a short-lived access token of the account an admin bound their
      repository to (\`POST /api/v2/oidc/bindings\`, by numeric repository id): docs/oidc.md.

      With \`--tls-cert\` and \`--tls-key\` (PEM files; the certificate may be followed by its intermediates)
      the same port serves https and wss. SIGHUP reads both files again: new connections get the new pair,
      connected agents keep their connection; a pair that does not load is logged (\`EE-TLS-INVALID\`) and the
      old one stays. Operators point eectl at a private CA with \`--cacert\`, agents with \`control_plane_ca\`
      (docs/tls.md).

      A busy port is \`EE-LISTEN-BUSY\`, an unusable data dir \`EE-DATA-DIR-UNUSABLE\`, one group or others
      can write \`EE-DATA-DIR-INSECURE\` and an unusable certificate or key \`EE-TLS-INVALID\` (exit 1, nothing
      started). Every file the CP writes there is 0600; compose texts in its database are sealed under
      DATA_DIR/store.key (back it up with the database).
      Environment: EE_ADMIN_TOKEN (above), EE_LOG_LEVEL (log level on stderr: trace, debug, info (default), warn,
      error, silent). All variables: docs/environment.md.

      Readiness (\`GET /readyz\`, and deploys) waits until runtime state is rebuilt from the agents: with a
      surviving database, until \`--ready-quorum\` of the agents live at the last checkpoint are back; with an
      empty one, until no agent registered for \`--ready-settle-ms\`; never longer than \`--ready-max-wait-ms\`.
      Why it is not ready yet is logged every few seconds.

      Measurements: without \`--policy\`, an agent whose MRTD/RTMRs no admin approved is refused
      (\`EE-ATT-MRTD-NOT-ALLOWED\`) and its measurements are kept as a baseline for \`eectl measurements approve\`;
      with \`--dev-attestation\` they are accepted. The start log says which applies (spec/policy.md).
    `,
    examples: [
      [
        "Serve on the default port with dev attestation",
        "eectl control-plane --listen 127.0.0.1:8080 --data-dir ./.easyenclave --dev-attestation ./.easyenclave/dev-attestation",
      ],
      [
        "Call an agent stale after 3 s of silence (agents are asked to heartbeat every second)",
        "eectl control-plane --stale-after-ms 3000",
      ],
      ["Run only images pinned by digest", "eectl control-plane --require-pinned-images"],
      [
        "A federation master on the hub's nats-server (docs/federation.md)",
        "eectl control-plane --role master --nats nats://127.0.0.1:4222 --nats-creds ./master.creds",
      ],
      [
        "A datacenter CP on its leaf nats-server",
        "eectl control-plane --role dc --dc-id eu-west --nats nats://127.0.0.1:4222 --nats-creds ./cp.creds",
      ],
      [
        "Keep business state in PostgreSQL (docs/business-store.md)",
        "eectl control-plane --business-db postgres://ee@db.internal:5432/easyenclave",
      ],
      [
        "Serve https and wss (reload the pair with `kill -HUP`)",
        "eectl control-plane --listen 0.0.0.0:8443 --tls-cert cp.pem --tls-key cp.key",
      ],
    ],
  });

  listen = Option.String("--listen", "127.0.0.1:8080", { description: "HOST:PORT to serve on" });
  dataDir = Option.String("--data-dir", "./.easyenclave", {
    description: "Directory for the SQLite store and bootstrap files",
  });
  businessDb = Option.String("--business-db", {
    description:
      "postgres://USER@HOST:PORT/DB: keep business state (accounts, keys, audit, ledger, capacity) in PostgreSQL (default: SQLite business.db in --data-dir)",
  });
  adminToken = Option.String("--admin-token", {
    description: "Admin bearer token; visible in ps, prefer --admin-token-file or $EE_ADMIN_TOKEN",
  });
  adminTokenFile = Option.String("--admin-token-file", {
    description:
      "File whose first line is the admin token (mode 0600; default: $EE_ADMIN_TOKEN, else generated)",
  });
  devAttestation = Option.String("--dev-attestation", {
    description:
      "Trust the development attestation root in DIR (from `eectl attest dev-init`). Never in production.",
  });
  policy = Option.String("--policy", {
    description:
      "Measurement policy JSON (spec/policy.md). Default: MRTD/RTMRs nobody approved are refused and recorded as baselines (eectl measurements); with --dev-attestation, accepted",
  });
  refuseUnknownMeasurements = Option.Boolean("--refuse-unknown-measurements", false, {
    description:
      "Without --policy: refuse MRTD/RTMRs nobody approved even with --dev-attestation (the default without it)",
  });
  collateral = Option.String("--collateral", {
    description:
      "QuoteCollateralV3 JSON file or directory of *.collateral.json (CRLs, TCB info, QE identity)",
  });
  collateralUrl = Option.String("--collateral-url", {
    description:
      "PCCS or Intel PCS (API v4) base URL to fetch collateral from, after --collateral; cached in DATA_DIR/collateral-cache",
  });
  heartbeatMs = Option.String("--heartbeat-ms", {
    description: `Heartbeat interval asked of agents, which follow it; below --stale-after-ms (default a third of it: ${heartbeatFor(CP_DEFAULTS.staleAfterMs)})`,
  });
  staleAfterMs = Option.String("--stale-after-ms", {
    description: `An agent silent this long is stale; at least ${MIN_STALE_AFTER_MS} (default ${CP_DEFAULTS.staleAfterMs})`,
  });
  forgetAfterMs = Option.String("--forget-after-ms", {
    description: `A stale agent is forgotten after this long (default ${CP_DEFAULTS.forgetAfterMs})`,
  });
  reattestMs = Option.String("--reattest-ms", {
    description: `Re-attest registered agents this often (default ${CP_DEFAULTS.reattestMs})`,
  });
  readyQuorum = Option.String("--ready-quorum", {
    description: `Fraction of previously live agents that must be back before ready (default ${READINESS_DEFAULTS.quorum})`,
  });
  readySettleMs = Option.String("--ready-settle-ms", {
    description: `Empty database: ready after this long with no new registration (default ${READINESS_DEFAULTS.settleMs})`,
  });
  readyMaxWaitMs = Option.String("--ready-max-wait-ms", {
    description: `Ready after this long regardless (default ${READINESS_DEFAULTS.maxWaitMs})`,
  });
  tlsCert = Option.String("--tls-cert", {
    description:
      "PEM certificate (then its intermediates) to serve https/wss with; needs --tls-key; SIGHUP reloads",
  });
  tlsKey = Option.String("--tls-key", { description: "PEM private key of --tls-cert" });
  role = Option.String("--role", "standalone", {
    description:
      "standalone (default, no broker); master (on the hub's nats-server) or dc (on its leaf nats-server): docs/federation.md",
  });
  dcId = Option.String("--dc-id", {
    description: "This CP's datacenter id, also its leaf's JetStream domain (with --role dc)",
  });
  nats = Option.String("--nats", {
    description: "The local nats-server's URL, nats://HOST:PORT (with --role master or dc)",
  });
  natsCreds = Option.String("--nats-creds", {
    description: "A NATS .creds file, or a file whose first line is user:password (with --nats)",
  });
  natsTlsCa = Option.String("--nats-tls-ca", {
    description: "CA file to verify the nats-server by (with --nats)",
  });
  natsTlsCert = Option.String("--nats-tls-cert", {
    description: "Client certificate for the nats-server (with --nats)",
  });
  natsTlsKey = Option.String("--nats-tls-key", { description: "Its private key (with --nats-tls-cert)" });
  dcDegradedAfterMs = Option.String("--dc-degraded-after-ms", {
    description:
      "Master: a dc whose newest state is older than this is degraded and skipped by placement (default 30000)",
  });
  masterKey = Option.String("--master-key", {
    description:
      "Dc: the master's CP identity public key (64 hex digits, cp_pubkey in its start log); desired state from the hub is applied only when signed by it",
  });
  dcLagWarnMs = Option.String("--dc-lag-warn-ms", {
    description:
      "Master: a dc's sync lag above this is a warn log line and the ee_federation_dc_lag_above_threshold metric (default 60000)",
  });
  nodeSizes = Option.String("--node-sizes", {
    description:
      "Comma-separated accepted node sizes, each NAME or NAME=VCPUS:MEMORY_MB:GPUS to set its preset (default tiny,standard,llm)",
  });
  reconcileMs = Option.String("--reconcile-ms", {
    description: `Run the capacity reconciler this often (default ${CAPACITY_DEFAULTS.reconcileMs})`,
  });
  orderLeaseS = Option.String("--order-lease-s", {
    description: `A launcher's lease on a claimed launch order, renewed by provisioning (default ${CAPACITY_DEFAULTS.leaseMs / 1000})`,
  });
  requirePinnedImages = Option.Boolean("--require-pinned-images", false, {
    description:
      "Refuse deploys and preflights whose images are not pinned by @sha256: digest (EE-COMPOSE-UNPINNED); built images are exempt",
  });
  billingPeriodS = Option.String("--billing-period-s", {
    description: `Charge running deployments per period of this many seconds (default ${BILLING_DEFAULTS.periodS})`,
  });
  billingGraceS = Option.String("--billing-grace-s", {
    description: `Undeploy a dry tenant's deployment this many seconds after it ran dry (default ${BILLING_DEFAULTS.graceS})`,
  });
  billingWebhookSecretFile = Option.String("--billing-webhook-secret-file", {
    description:
      "HMAC-SHA256 key of the payment webhook (POST /api/v2/billing/webhook); without it the webhook refuses all",
  });
  oidcIssuer = oidcFlags.issuer();
  oidcAudience = oidcFlags.audience();
  oidcJwks = oidcFlags.jwks();
  attestation = Option.String("--attestation", "none", {
    description:
      "This CP's own quote provider, bound into the envelope on deploy/undeploy: dev:DIR[:MRTD], tsm or none",
  });

  async run(): Promise<number> {
    const federation = await federationFlags(this);
    const { host, port } = hostPortFlag(this.listen, "--listen");
    const tls = tlsFlags(this.tlsCert, this.tlsKey);
    const oidc = await oidcVerifierConfig({
      issuer: this.oidcIssuer,
      audience: this.oidcAudience,
      jwks: this.oidcJwks,
    });
    const [{ startControlPlane }, { loadPolicyFile }, { loadCollateralStore }, { createLogger }] =
      await Promise.all([
        import("../../cp/control-plane.ts"),
        import("../../cp/config-files.ts"),
        import("../../attestation/collateral-store.ts"),
        import("../../lib/log.ts"),
      ]);
    const log = createLogger("control-plane");
    const adminToken = await adminTokenFrom(
      { flag: this.adminToken, file: this.adminTokenFile, env: process.env.EE_ADMIN_TOKEN },
      (fields, message) => log.warn(fields, message),
    );
    const cp = await startControlPlane({
      host,
      port,
      dataDir: this.dataDir,
      ...(this.businessDb ? { businessDb: this.businessDb } : {}),
      log,
      ...(adminToken === undefined ? {} : { adminToken }),
      devAttestationDir: this.devAttestation,
      heartbeatMs: parsePositiveInt(this.heartbeatMs, "--heartbeat-ms"),
      staleAfterMs: staleAfterFlag(this.staleAfterMs),
      forgetAfterMs: parsePositiveInt(this.forgetAfterMs, "--forget-after-ms"),
      reattestMs: parsePositiveInt(this.reattestMs, "--reattest-ms"),
      ...(this.requirePinnedImages ? { requirePinnedImages: true } : {}),
      ...(this.policy ? { policy: loadPolicyFile(this.policy) } : {}),
      ...(this.refuseUnknownMeasurements ? { refuseUnknownMeasurements: true } : {}),
      ...(this.collateral ? { collateral: loadCollateralStore(this.collateral) } : {}),
      ...(this.collateralUrl ? { collateralUrl: this.collateralUrl } : {}),
      ...(await cpQuoteProvider(this.attestation)),
      readiness: {
        quorum: parseFraction(this.readyQuorum, "--ready-quorum") ?? READINESS_DEFAULTS.quorum,
        settleMs: parsePositiveInt(this.readySettleMs, "--ready-settle-ms") ?? READINESS_DEFAULTS.settleMs,
        maxWaitMs:
          parsePositiveInt(this.readyMaxWaitMs, "--ready-max-wait-ms") ?? READINESS_DEFAULTS.maxWaitMs,
      },
      ...(federation ? { federation } : {}),
      ...nodeSizesFlag(this.nodeSizes),
      ...(tls ? { tls } : {}),
      billing: {
        periodS: parsePositiveInt(this.billingPeriodS, "--billing-period-s") ?? BILLING_DEFAULTS.periodS,
        graceS: parsePositiveInt(this.billingGraceS, "--billing-grace-s") ?? BILLING_DEFAULTS.graceS,
        ...(this.billingWebhookSecretFile ? { webhookSecretFile: this.billingWebhookSecretFile } : {}),
      },
      ...(oidc ? { oidc } : {}),
      capacity: capacityFlags(this.reconcileMs, this.orderLeaseS),
    });
    const out = this.context.stdout;
    out.write(`control plane: ${cp.url}\nagent websocket: ${cp.wsUrl}/api/v2/agents/connect\n`);
    if (cp.generatedAdminToken) out.write(`admin token (shown once): ${cp.generatedAdminToken}\n`);
    if (cp.storedAdminTokenFile)
      out.write(
        `admin token: the one set earlier (its digest is in ${cp.storedAdminTokenFile}); ` +
          `for a new one run \`eectl admin-token rotate --data-dir ${this.dataDir}\`, ` +
          "or start with --admin-token-file or EE_ADMIN_TOKEN\n",
      );
    const reload = cp.reloadTls;
    const onHangup = reload ? () => reloadTls(reload, log) : null;
    if (onHangup) process.on("SIGHUP", onHangup);
    const signal = await untilSignal();
    if (onHangup) process.off("SIGHUP", onHangup);
    log.info({ signal }, "stopping");
    await cp.stop();
    return 0;
  }
}

function nodeSizesFlag(value: string | undefined) {
  if (value === undefined) return {};
  const { names, presets } = parseNodeSizes(value);
  return { nodeSizes: names, sizePresets: presets };
}

function capacityFlags(reconcileMs: string | undefined, leaseS: string | undefined) {
  const reconcile = parsePositiveInt(reconcileMs, "--reconcile-ms");
  const lease = parsePositiveInt(leaseS, "--order-lease-s");
  return {
    ...(reconcile === undefined ? {} : { reconcileMs: reconcile }),
    ...(lease === undefined ? {} : { leaseMs: lease * 1000 }),
  };
}

/** Both TLS flags or neither: one alone is EE-CONFIG-INVALID naming the other. */
function tlsFlags(cert: string | undefined, key: string | undefined): ServerTlsFiles | undefined {
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined || key === undefined)
    throw new ValidationError(
      "EE-CONFIG-INVALID",
      `${cert === undefined ? "--tls-cert" : "--tls-key"} is missing: --tls-cert and --tls-key go together`,
    );
  return { certFile: cert, keyFile: key, certSetting: "--tls-cert", keySetting: "--tls-key" };
}

/** SIGHUP: the new pair, or the reason it was refused, logged; a refused pair leaves the old one serving. */
function reloadTls(reload: () => ServerTls, log: Logger): void {
  try {
    const next = reload();
    log.info(
      { serial: next.serial, fingerprint256: next.fingerprint256, valid_to: next.validTo },
      "TLS certificate reloaded: new connections get it, open ones keep theirs",
    );
  } catch (err) {
    const e = err as { code?: string; message?: string };
    log.error(
      { code: e.code ?? "EE-INTERNAL", err: e.message },
      "TLS reload refused: the previous certificate and key stay in use",
    );
  }
}

function staleAfterFlag(value: string | undefined): number | undefined {
  const ms = parsePositiveInt(value, "--stale-after-ms");
  if (ms !== undefined && ms < MIN_STALE_AFTER_MS)
    throw new ValidationError(
      "EE-CONFIG-INVALID",
      `--stale-after-ms must be at least ${MIN_STALE_AFTER_MS} (ms), got ${ms}`,
    );
  return ms;
}

/** `--attestation`: dev:DIR[:MRTD] (a dev-init directory, optional 96-hex MRTD), tsm, or none. */
async function cpQuoteProvider(spec: string): Promise<{ quoteProvider?: QuoteProvider }> {
  if (spec === "none") return {};
  if (spec === "tsm") {
    const { createTsmQuoteProvider } = await import("../../attestation/providers/tsm.ts");
    return { quoteProvider: createTsmQuoteProvider() };
  }
  const dev = /^dev:(.+?)(?::([0-9a-fA-F]{96}))?$/.exec(spec);
  if (!dev)
    throw new ValidationError("EE-CONFIG-INVALID", "--attestation must be dev:DIR[:MRTD], tsm or none");
  const mrtd = dev[2]?.toLowerCase();
  const { createDevQuoteProvider } = await import("../../attestation/providers/dev.ts");
  return { quoteProvider: createDevQuoteProvider(mrtd ? { dir: dev[1]!, mrtd } : { dir: dev[1]! }) };
}

/** `--role` and the flags that go with it; a standalone CP takes none of the NATS flags. */
async function federationFlags(c: ControlPlaneCommand): Promise<FederationOptions | undefined> {
  const natsFlags = [
    c.nats,
    c.natsCreds,
    c.natsTlsCa,
    c.natsTlsCert,
    c.natsTlsKey,
    c.dcDegradedAfterMs,
    c.dcLagWarnMs,
  ];
  if (c.role === "standalone") {
    if (c.dcId !== undefined || natsFlags.some((f) => f !== undefined))
      throw new ValidationError(
        "EE-CONFIG-INVALID",
        "--dc-id, --nats and the --nats-* flags go with --role master or dc",
      );
    return undefined;
  }
  if (c.role !== "master" && c.role !== "dc")
    throw new ValidationError(
      "EE-CONFIG-INVALID",
      `--role: expected standalone, master or dc, got "${c.role}"`,
    );
  if (c.nats === undefined)
    throw new ValidationError("EE-CONFIG-INVALID", `--role ${c.role} needs --nats nats://HOST:PORT`);
  if (!/^(nats|tls):\/\/[^\s/]+$/.test(c.nats))
    throw new ValidationError("EE-CONFIG-INVALID", "--nats: expected nats://HOST:PORT or tls://HOST:PORT");
  if (c.role === "dc" && c.dcId === undefined)
    throw new ValidationError("EE-CONFIG-INVALID", "--role dc needs --dc-id ID");
  if (c.role === "master" && c.dcId !== undefined)
    throw new ValidationError("EE-CONFIG-INVALID", "--dc-id goes with --role dc (a master is dc `master`)");
  if (c.role === "dc" && c.dcDegradedAfterMs !== undefined)
    throw new ValidationError("EE-CONFIG-INVALID", "--dc-degraded-after-ms goes with --role master");
  if (c.role === "master" && c.masterKey !== undefined)
    throw new ValidationError("EE-CONFIG-INVALID", "--master-key goes with --role dc");
  // Loaded only here: the desired-state check brings zod, which eectl's start must not pay for.
  if (c.masterKey !== undefined) (await import("../../cp/config-files.ts")).masterPublicKey(c.masterKey);
  if (c.role === "dc" && c.dcLagWarnMs !== undefined)
    throw new ValidationError("EE-CONFIG-INVALID", "--dc-lag-warn-ms goes with --role master");
  if ((c.natsTlsCert === undefined) !== (c.natsTlsKey === undefined))
    throw new ValidationError("EE-CONFIG-INVALID", "--nats-tls-cert and --nats-tls-key go together");
  const tls = {
    ...(c.natsTlsCa ? { caFile: c.natsTlsCa } : {}),
    ...(c.natsTlsCert ? { certFile: c.natsTlsCert } : {}),
    ...(c.natsTlsKey ? { keyFile: c.natsTlsKey } : {}),
  };
  const degradedAfterMs = parsePositiveInt(c.dcDegradedAfterMs, "--dc-degraded-after-ms");
  const lagWarnMs = parsePositiveInt(c.dcLagWarnMs, "--dc-lag-warn-ms");
  return {
    role: c.role,
    ...(c.dcId !== undefined ? { dcId: checkDcId(c.dcId) } : {}),
    nats: {
      url: c.nats,
      ...(c.natsCreds ? { credsFile: c.natsCreds } : {}),
      ...(Object.keys(tls).length > 0 ? { tls } : {}),
    },
    ...(degradedAfterMs ? { degradedAfterMs } : {}),
    ...(lagWarnMs ? { lagWarnMs } : {}),
    ...(c.masterKey !== undefined ? { masterKey: c.masterKey } : {}),
  };
}
