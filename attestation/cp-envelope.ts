// The CP attestation envelope on CP→agent writes (deploy, undeploy): the control plane signs each command with its
// Ed25519 identity key and, when it runs in a TD, attaches its own quote binding that key; the agent checks it
// against its cp_envelope policy and the CP key it pinned at its first registration before anything runs. A
// deployment's origin (its envelope, kept by the agent) lets the CP recognize later what it signed. Both sides
// live here so they share one signed message. The only I/O is the agent's pin files (filePin). spec/protocol.md
// ("CP envelope", "CP key pin", "Deployment origin") is the prose.
// Imports node:crypto, node:fs, attestation/, spec/ and lib/canonical-json.
import { createHash, createPublicKey, type KeyObject, randomBytes, sign } from "node:crypto";
import { writeFileSync } from "node:fs";
import { canonicalJson } from "../lib/canonical-json.ts";
import { readFileIfExists } from "../lib/read-if-exists.ts";
import { AttestationError, EnvelopeError } from "../spec/errors.ts";
import { type CpEnvelope, type DeployOrigin, type MessageBody, messageSchemas } from "../spec/protocol.ts";
import { ed25519Verify, rawPublicKey } from "./agent-key.ts";
import type { QuoteProvider } from "./providers/provider.ts";
import { reportDataFor, reportDataMatches } from "./report-data.ts";
import type { TrustAnchors } from "./trust.ts";
import { verifyQuote } from "./verify.ts";

export type EnvelopedType = "deploy" | "undeploy";
/** A deploy or undeploy body without its envelope: what the CP signs. */
export type EnvelopeCommand<T extends EnvelopedType> = Omit<MessageBody<T>, "envelope">;
/**
 * signed (default): every command carries an envelope signed by the pinned CP key, a quote is checked when present;
 * required: the same, and the quote must be there; optional: checked when present (rollouts); disabled: nothing.
 */
export type EnvelopePolicy = "signed" | "required" | "optional" | "disabled";

/** How far issued_at may be from the agent's clock, either way. */
export const ENVELOPE_MAX_SKEW_MS = 5 * 60_000;
/**
 * The nonce in the REPORTDATA of the CP's key-binding quote. The CP quotes once per start, not per command (a TD
 * quote goes out to the host's quoting service and takes far longer than a deploy should wait), so the quote's job
 * is only to bind cp_pubkey to the TD that holds it; freshness comes from each command's signature (issued_at,
 * nonce). A fixed value lets the agent recompute REPORTDATA without another field.
 */
const CP_KEY_BINDING_NONCE: Uint8Array = new Uint8Array(32);
/** The MRTD pin file in the agent's data dir (pin_first_seen). */
export const CP_PIN_FILE = "cp-pin.json";
/** The CP key pin file in the agent's data dir: the key of the first CP the agent registered with. */
export const CP_KEY_PIN_FILE = "cp-key-pin.json";

const SIGNING_PREFIX = Buffer.from("easyenclave/v1/cp-envelope:");
const NONCE_BYTES = 16;
// Far above the CP→agent command rate over a skew window (2 × 5 min), so eviction never drops a live nonce.
const REPLAY_CAPACITY = 4096;

/**
 * SHA-256 of the command as the agent will run it: canonical JSON of the body after its schema (so defaults such
 * as health.path are the ones the agent sees), with the build context and sealed registry_auth replaced by their
 * SHA-256.
 */
function commandDigest<T extends EnvelopedType>(type: T, body: EnvelopeCommand<T>): Uint8Array {
  const { envelope: _, ...command } = body as MessageBody<T>;
  const parsed = messageSchemas[type].safeParse(command);
  // A body that does not parse is refused by the agent's frame check before any envelope check.
  const normal: Record<string, unknown> = { ...(parsed.success ? parsed.data : command) };
  const context = normal.context;
  if (context instanceof Uint8Array) {
    delete normal.context;
    normal.context_sha256 = createHash("sha256").update(context).digest("hex");
  }
  // Sealed registry credentials are bytes too: covered by their hash, as the wire decodes bytes differently.
  const sealed = normal.registry_auth as { epk: Uint8Array; iv: Uint8Array; ct: Uint8Array } | undefined;
  if (sealed) {
    delete normal.registry_auth;
    const h = createHash("sha256").update(sealed.epk).update(sealed.iv).update(sealed.ct);
    normal.registry_auth_sha256 = h.digest("hex");
  }
  return createHash("sha256").update(canonicalJson(normal)).digest();
}

/** The bytes `sig` covers: prefix ‖ type ‖ deployment_id ‖ command digest ‖ issued_at ‖ nonce ‖ agent_id. */
function envelopeMessage(o: {
  type: EnvelopedType;
  deploymentId: string;
  digest: Uint8Array;
  issuedAt: number;
  nonce: Uint8Array;
  agentId: string;
}): Buffer {
  const issuedAt = Buffer.alloc(8);
  issuedAt.writeBigUInt64BE(BigInt(o.issuedAt));
  return Buffer.concat([
    SIGNING_PREFIX,
    lengthPrefixed(o.type),
    lengthPrefixed(o.deploymentId),
    o.digest,
    issuedAt,
    o.nonce,
    lengthPrefixed(o.agentId),
  ]);
}

function lengthPrefixed(s: string): Buffer {
  const bytes = Buffer.from(s, "utf8");
  const len = Buffer.alloc(2);
  len.writeUInt16BE(bytes.length);
  return Buffer.concat([len, bytes]);
}

/** REPORTDATA of the CP's quote: purpose cp-envelope, the fixed binding nonce, the CP's public key. */
function cpQuoteReportData(cpPubkey: Uint8Array): Uint8Array {
  return reportDataFor("cp-envelope", CP_KEY_BINDING_NONCE, cpPubkey);
}

/** Asks the CP's quote provider for the quote that binds its identity key (once per start). */
export function quoteCpKey(provider: QuoteProvider, cpPubkey: Uint8Array): Promise<Uint8Array> {
  return provider.getQuote(cpQuoteReportData(cpPubkey));
}

export interface EnvelopeSigner {
  /** The CP identity: the raw Ed25519 public key every envelope carries. */
  readonly publicKey: Uint8Array;
  /** Whether envelopes carry a quote (the CP has a quote provider). */
  readonly attested: boolean;
  sign<T extends EnvelopedType>(type: T, body: EnvelopeCommand<T>, agentId: string): CpEnvelope;
}

export function createEnvelopeSigner(o: {
  privateKey: KeyObject;
  quote?: Uint8Array;
  now?: () => number;
}): EnvelopeSigner {
  const publicKey = rawPublicKey(createPublicKey(o.privateKey));
  const now = o.now ?? Date.now;
  return {
    publicKey,
    attested: o.quote !== undefined,
    sign(type, body, agentId) {
      const issuedAt = now();
      const nonce = new Uint8Array(randomBytes(NONCE_BYTES));
      const message = envelopeMessage({
        type,
        deploymentId: body.deployment_id,
        digest: commandDigest(type, body),
        issuedAt,
        nonce,
        agentId,
      });
      return {
        cp_pubkey: publicKey,
        issued_at: issuedAt,
        nonce,
        sig: new Uint8Array(sign(null, message, o.privateKey)),
        ...(o.quote ? { quote: o.quote } : {}),
      };
    },
  };
}

/** What an agent pins on first sight: the CP's MRTD (pin_first_seen) or its identity key (always). */
export type PinKind = "mrtd" | "cp_pubkey";

const PIN_FORMAT: Record<PinKind, RegExp> = { mrtd: /^[0-9a-f]{96}$/, cp_pubkey: /^[0-9a-f]{64}$/ };

/** A value pinned on first sight and kept across restarts. */
export interface Pin {
  readonly path: string;
  read(): string | null;
  /** Pins `value` unless one is pinned already; returns the pinned value. */
  pin(value: string): string;
}

/**
 * A pin kept as JSON `{KIND: value, pinned_at}` in `path` (0600), written once: exclusive create, so two writers
 * cannot both pin. Removing the file is how an operator pins again.
 */
export function filePin(path: string, kind: PinKind): Pin {
  const read = (): string | null => {
    const text = readFileIfExists(path);
    if (text === null) return null;
    let value: unknown;
    try {
      value = (JSON.parse(text) as Record<string, unknown> | null)?.[kind];
    } catch {
      value = undefined;
    }
    // A damaged pin refuses every CP until an operator looks: silently re-pinning would defeat the pin.
    if (typeof value !== "string" || !PIN_FORMAT[kind].test(value))
      throw new EnvelopeError("EE-ENV-PIN", `${path} does not hold a pinned ${kind}; remove it to pin again`);
    return value;
  };
  return {
    path,
    read,
    pin(value) {
      const pinned = read();
      if (pinned !== null) return pinned;
      try {
        writeFileSync(path, `${JSON.stringify({ [kind]: value, pinned_at: new Date().toISOString() })}\n`, {
          mode: 0o600,
          flag: "wx",
        });
        return value;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
        return read() ?? value;
      }
    },
  };
}

export interface EnvelopeVerifierOptions {
  policy: EnvelopePolicy;
  /** The agent's own id: an envelope signed for another agent does not verify. */
  agentId: string;
  /** Roots the CP's quote must chain to. */
  trust: TrustAnchors;
  /** Lowercase hex; empty: any MRTD whose quote verifies (subject to the pin). */
  trustedMrtds: readonly string[];
  /** Present with pin_first_seen. */
  pin?: Pin;
  /**
   * The CP key pinned at the first registration: an envelope signed by any other key is refused (EE-ENV-KEY), and
   * so is every envelope while nothing is pinned. Without it (unit tests of the other checks) keys are not compared.
   */
  keyPin?: Pin;
  now?: () => number;
}

/** What an accepted command was checked against (for the log): nothing, a signature, or a signature and a quote. */
export interface EnvelopeVerdict {
  checked: "none" | "signature" | "quote";
  cp_pubkey: string | null;
  mrtd: string | null;
}

export interface EnvelopeVerifier {
  readonly policy: EnvelopePolicy;
  /**
   * Throws EnvelopeError (EE-ENV-*) when the policy refuses the command; records its nonce when it accepts.
   * `requireEnvelope` refuses a command without one under `optional` too (the agent's own HTTP writes).
   */
  check<T extends EnvelopedType>(
    type: T,
    body: MessageBody<T>,
    opts?: { requireEnvelope?: boolean },
  ): EnvelopeVerdict;
}

export function createEnvelopeVerifier(o: EnvelopeVerifierOptions): EnvelopeVerifier {
  const now = o.now ?? Date.now;
  const trusted = new Set(o.trustedMrtds);
  // nonce (hex) → when it leaves the skew window; Map order is insertion order, so the first entry is the oldest.
  const seen = new Map<string, number>();

  const remember = (nonce: string, issuedAt: number, at: number) => {
    for (const [n, until] of seen) if (until < at) seen.delete(n);
    while (seen.size >= REPLAY_CAPACITY) seen.delete(seen.keys().next().value as string);
    seen.set(nonce, issuedAt + ENVELOPE_MAX_SKEW_MS);
  };

  return {
    policy: o.policy,
    check(type, body, opts = {}) {
      const none: EnvelopeVerdict = { checked: "none", cp_pubkey: null, mrtd: null };
      if (o.policy === "disabled") return none;
      const env = body.envelope;
      if (!env) {
        if (o.policy !== "optional" || opts.requireEnvelope)
          throw new EnvelopeError(
            "EE-ENV-MISSING",
            `${type} carries no CP envelope; this agent requires one (cp_envelope.policy ${o.policy})`,
          );
        return none;
      }
      const cpPubkey = hex(env.cp_pubkey);
      const message = envelopeMessage({
        type,
        deploymentId: body.deployment_id,
        digest: commandDigest(type, body),
        issuedAt: env.issued_at,
        nonce: env.nonce,
        agentId: o.agentId,
      });
      if (!ed25519Verify(env.cp_pubkey, message, env.sig))
        throw new EnvelopeError(
          "EE-ENV-SIGNATURE",
          `the envelope signature does not verify over this ${type} for this agent`,
          { cp_pubkey: cpPubkey },
        );
      if (o.keyPin) {
        const pinned = o.keyPin.read();
        if (pinned !== cpPubkey)
          throw new EnvelopeError(
            "EE-ENV-KEY",
            pinned === null
              ? `no CP key is pinned in ${o.keyPin.path} yet: the agent pins the key its CP sends at registration`
              : `the envelope is signed by CP key ${cpPubkey}, not by the pinned ${pinned}; remove ${o.keyPin.path} and restart the agent to trust another CP`,
            { cp_pubkey: cpPubkey, pinned },
          );
      }
      const at = now();
      if (Math.abs(at - env.issued_at) > ENVELOPE_MAX_SKEW_MS)
        throw new EnvelopeError(
          "EE-ENV-STALE",
          `issued_at is ${Math.round((at - env.issued_at) / 1000)} s off this agent's clock (at most ${ENVELOPE_MAX_SKEW_MS / 1000} s)`,
          { cp_pubkey: cpPubkey },
        );
      const nonce = hex(env.nonce);
      if (seen.has(nonce))
        throw new EnvelopeError("EE-ENV-STALE", "the envelope nonce was seen before (replay)", {
          cp_pubkey: cpPubkey,
        });

      let mrtd: string | null = null;
      if (env.quote === undefined) {
        if (o.policy === "required")
          throw new EnvelopeError(
            "EE-ENV-QUOTE",
            "the envelope carries no CP quote; this agent requires one",
            {
              cp_pubkey: cpPubkey,
            },
          );
      } else {
        mrtd = checkQuote(env.quote, env.cp_pubkey, o.trust);
        if (trusted.size > 0 && !trusted.has(mrtd))
          throw new EnvelopeError("EE-ENV-MRTD", `CP MRTD ${mrtd} is not in trusted_mrtds`, {
            cp_pubkey: cpPubkey,
            mrtd,
          });
        if (o.pin) {
          const pinned = o.pin.pin(mrtd);
          if (pinned !== mrtd)
            throw new EnvelopeError("EE-ENV-PIN", `CP MRTD ${mrtd} differs from the pinned ${pinned}`, {
              cp_pubkey: cpPubkey,
              mrtd,
            });
        }
      }
      remember(nonce, env.issued_at, at);
      return { checked: mrtd === null ? "signature" : "quote", cp_pubkey: cpPubkey, mrtd };
    },
  };
}

/**
 * The origin an agent keeps with a deploy it accepted: its envelope and the digest of the command it signed (null
 * for a deploy without an envelope). Agent side.
 */
export function originOf(body: MessageBody<"deploy">): DeployOrigin | null {
  const env = body.envelope;
  if (!env) return null;
  return {
    cp_pubkey: hex(env.cp_pubkey),
    issued_at: env.issued_at,
    nonce: hex(env.nonce),
    sig: hex(env.sig),
    command_sha256: hex(commandDigest("deploy", body)),
  };
}

/**
 * Whether `origin` is a deploy of `deploymentId` for `agentId` signed by `cpPubkey` (CP side: the CP recognizes
 * what it dispatched itself, even after losing its records). The agent checked the command against the digest
 * when it accepted it; the CP checks its own signature over that digest.
 */
export function originSignedBy(
  origin: DeployOrigin,
  o: { deploymentId: string; agentId: string; cpPubkey: Uint8Array },
): boolean {
  if (origin.cp_pubkey !== hex(o.cpPubkey)) return false;
  const message = envelopeMessage({
    type: "deploy",
    deploymentId: o.deploymentId,
    digest: Buffer.from(origin.command_sha256, "hex"),
    issuedAt: origin.issued_at,
    nonce: Buffer.from(origin.nonce, "hex"),
    agentId: o.agentId,
  });
  return ed25519Verify(o.cpPubkey, message, Buffer.from(origin.sig, "hex"));
}

/** Verifies the CP's quote and that it binds `cpPubkey`; returns its MRTD. */
function checkQuote(quote: Uint8Array, cpPubkey: Uint8Array, trust: TrustAnchors): string {
  let verified: ReturnType<typeof verifyQuote>;
  try {
    verified = verifyQuote(quote, { trust });
  } catch (err) {
    if (!(err instanceof AttestationError)) throw err;
    throw new EnvelopeError("EE-ENV-QUOTE", `the CP quote does not verify: ${err.code}: ${err.message}`, {
      reason: err.code,
    });
  }
  if (!reportDataMatches(verified.reportData, cpQuoteReportData(cpPubkey)))
    throw new EnvelopeError("EE-ENV-QUOTE", "the CP quote's REPORTDATA does not bind cp_pubkey");
  return verified.mrtd;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}
