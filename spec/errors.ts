// Typed errors with stable codes: one class per failure family, each mapped once to an HTTP status
// and a WebSocket close code. Every code the product can emit is listed in ERROR_CODES, which spec/errors.md
// documents (a test keeps the two in step). Imports nothing: machines/, agent/ and actors/ all use it.

/** Every stable error code, with the one-line meaning that operators and clients see in spec/errors.md. */
export const ERROR_CODES = {
  // Protocol: frames on the agent WebSocket.
  "EE-PROTO-UNDECODABLE": "The frame is not a msgpack-encoded envelope.",
  "EE-PROTO-TOO-LARGE": "The frame exceeds the size cap for the agent channel.",
  "EE-PROTO-TEXT-FRAME": "Text frames are not accepted; send binary msgpack frames.",
  "EE-PROTO-VERSION": "The envelope version is not supported.",
  "EE-PROTO-UNKNOWN-TYPE": "The envelope type is unknown.",
  "EE-PROTO-INVALID-BODY": "The message body does not match its schema.",
  "EE-PROTO-UNEXPECTED": "The message is valid but not expected in the session's current state.",
  "EE-PROTO-ABUSE": "Too many bad frames on one connection; the connection is closed.",
  "EE-PROTO-REGISTER-TIMEOUT":
    "The agent did not register within the handshake deadline (or before its challenge expired).",
  "EE-PROTO-PENDING-ADDRESS":
    "Too many unregistered connections from this address: the upgrade is refused (HTTP 429); retry later.",
  "EE-PROTO-PENDING-GLOBAL":
    "Too many unregistered connections in all: the upgrade is refused (HTTP 503); retry later.",
  "EE-PROTO-SUPERSEDED": "A newer connection for the same agent replaced this one.",
  "EE-PROTO-SHUTDOWN": "The control plane is shutting down.",
  "EE-PROTO-SLOW-CONSUMER":
    "The peer stopped reading; the CP dropped its connection or stream at the buffer cap.",
  // Attestation: quote and nonce checks (reason codes of refused registrations).
  "EE-ATT-QUOTE-MALFORMED": "The quote cannot be parsed (truncated, bad lengths or layout).",
  "EE-ATT-QUOTE-VERSION": "The quote version is not 4 or 5.",
  "EE-ATT-KEY-TYPE": "The attestation key type is not ECDSA-256 with P-256.",
  "EE-ATT-TEE-TYPE": "The quote is not from a TDX TEE (tee_type 0x81).",
  "EE-ATT-QE-VENDOR": "The QE vendor ID is not Intel's.",
  "EE-ATT-CERT-DATA": "The certification data is not a type 6 QE report holding a type 5 PCK chain.",
  "EE-ATT-QUOTE-SIGNATURE": "The quote signature does not verify with the attestation key.",
  "EE-ATT-QE-REPORT-SIGNATURE": "The QE report signature does not verify with the PCK leaf key.",
  "EE-ATT-QE-BINDING": "The QE report data does not bind the attestation key and QE auth data.",
  "EE-ATT-CHAIN-INVALID": "The PCK certificate chain is malformed, broken, expired or badly signed.",
  "EE-ATT-ROOT-UNTRUSTED": "The PCK chain does not end in a trusted root.",
  "EE-ATT-COLLATERAL-MALFORMED":
    "The quote collateral cannot be parsed (JSON, hex, CRL DER or certificate chain).",
  "EE-ATT-COLLATERAL-SIGNATURE":
    "The TCB info or QE identity is not signed by an Intel TCB signing certificate under the root.",
  "EE-ATT-CRL": "A CRL is not signed by its issuer, or the PCK CRL issuer is not the PCK leaf's issuer.",
  "EE-ATT-REVOKED": "The PCK leaf or PCK CA certificate is revoked.",
  "EE-ATT-COLLATERAL-EXPIRED":
    "A CRL, the TCB info, the QE identity or the TCB signing certificate is not current.",
  "EE-ATT-COLLATERAL-UNAVAILABLE":
    "Collateral could not be fetched from the PCCS and no cached copy is usable.",
  "EE-ATT-QE-IDENTITY":
    "The quoting enclave does not match the QE identity (MRSIGNER, ISVPRODID, MISCSELECT, ATTRIBUTES, ISVSVN).",
  "EE-ATT-FMSPC-MISMATCH": "The PCK certificate's FMSPC or PCEID differs from the TCB info's.",
  "EE-ATT-TCB-MODULE":
    "The TDX module identity (MRSIGNERSEAM, SEAMATTRIBUTES, SVN) matches no TCB info entry.",
  "EE-ATT-TCB-LEVEL": "No TCB level of the TCB info applies to the platform (TCB level not supported).",
  "EE-ATT-TCB-REVOKED": "The platform's TCB level is revoked.",
  "EE-ATT-NONCE-UNKNOWN": "The nonce was not issued to this connection.",
  "EE-ATT-NONCE-EXPIRED": "The nonce expired before the registration arrived.",
  "EE-ATT-NONCE-REPLAYED": "The nonce was already used.",
  "EE-ATT-REPORTDATA-MISMATCH": "REPORTDATA does not equal the binding of the nonce and the agent key.",
  "EE-ATT-POP-INVALID": "The agent key proof-of-possession signature does not verify.",
  "EE-ATT-PROVIDER": "The quote provider failed to produce a quote.",
  "EE-ATT-MEASUREMENT-CHANGED":
    "Re-attestation: the MRTD or RTMRs differ from those the agent registered with.",
  "EE-ATT-WORKLOAD-MISMATCH":
    "Re-attestation: the quote does not bind the compose hash of the deployment the CP placed on the agent.",
  "EE-ATT-REFRESH-TIMEOUT": "Re-attestation: the agent did not answer the attest request in time.",
  "EE-ATT-MRTD-NOT-ALLOWED":
    "Measurement policy: the MRTD is neither allowlisted for the agent's node_size nor approved by an admin.",
  "EE-ATT-RTMR-NOT-ALLOWED":
    "Measurement policy: the RTMRs match no allowlist entry for the agent's node_size.",
  "EE-ATT-TCB-STATUS": "Measurement policy: the TCB status or an advisory ID is not allowed.",
  "EE-ATT-DEBUG-TD": "Measurement policy: the TD runs with the DEBUG attribute, which the policy refuses.",
  // Registration policy.
  "EE-REG-NODE-SIZE": "The node_size is not one of the configured sizes.",
  "EE-REG-DATACENTER": "The datacenter is not of the form provider:zone.",
  "EE-REG-DRIFT": "A live agent with this vm_name has a different MRTD, node_size or datacenter.",
  "EE-REG-DUPLICATE-VM-NAME": "Another live agent already holds this vm_name.",
  "EE-REG-ENROLLMENT": "The enrollment_token is unknown, expired, or was used by another agent.",
  "EE-REG-BOOTSTRAP-UNKNOWN": "The bootstrap token belongs to no launch order of this control plane.",
  "EE-REG-BOOTSTRAP-USED": "The bootstrap token was already consumed by another agent (single use).",
  "EE-REG-BOOTSTRAP-EXPIRED":
    "The bootstrap token's order lease expired, or the order was reclaimed, failed or cancelled since it was issued.",
  "EE-REG-BOOTSTRAP-MISMATCH":
    "The bootstrap token is for another datacenter or node_size than the agent registers with.",
  // Compose files: refused before anything runs.
  "EE-COMPOSE-INVALID": "The compose file is not valid YAML or does not have the Compose shape.",
  "EE-COMPOSE-UNSUPPORTED":
    "The compose file uses a key or value outside the supported subset (named in the message).",
  "EE-COMPOSE-BIND-MOUNT": "A volume mounts a host path outside the agent's allowlist.",
  "EE-COMPOSE-CONTEXT-TOO-LARGE":
    "The build context (compressed, decompressed or its entry count) is larger than the agent accepts.",
  "EE-COMPOSE-TOO-LARGE":
    "The compose file has more lines, services, ports or environment entries than allowed.",
  "EE-COMPOSE-PORTS":
    "The compose publishes a host port the agent's policy refuses (none by default, else 127.0.0.1 only).",
  "EE-COMPOSE-UNPINNED":
    "An image is not pinned by @sha256: digest and the control plane requires pinned images.",
  // Workloads on an agent: deploy, gate, run, undeploy.
  "EE-WORKLOAD-ENGINE": "The Docker engine is unreachable or answered with an unexpected error.",
  "EE-WORKLOAD-IMAGE-MISSING":
    "An image is neither present locally, in its registry, nor buildable from the deployment.",
  "EE-WORKLOAD-BUILD-FAILED": "Building an image from the build context failed.",
  "EE-WORKLOAD-PULL-AUTH": "The registry refused the pull: credentials missing or wrong (registry_auth).",
  "EE-WORKLOAD-PULL-FAILED": "Pulling an image failed after retries (registry unreachable, 5xx, reset).",
  "EE-WORKLOAD-DIGEST-MISMATCH":
    "The registry has no manifest with the pinned digest, or content failed its digest.",
  "EE-WORKLOAD-PORT-CONFLICT": "A published host port is already in use.",
  "EE-WORKLOAD-START-FAILED": "A container could not be created or started.",
  "EE-WORKLOAD-EXITED": "A container exited before the workload passed its health gate.",
  "EE-WORKLOAD-HEALTH-TIMEOUT": "The workload did not pass its health check within timeout_s.",
  "EE-WORKLOAD-INTERRUPTED": "The agent restarted during the deploy; what it had created was removed.",
  "EE-WORKLOAD-BUSY": "The agent already runs (or is deploying) another workload.",
  "EE-WORKLOAD-NONE": "The agent runs no workload (nothing to proxy to, log or undeploy).",
  "EE-WORKLOAD-UNREACHABLE": "The workload runs but did not accept the agent proxy's connection.",
  "EE-WORKLOAD-AGENT-LOST": "The agent disconnected or went stale before the deployment finished.",
  // Placement: why an agent cannot take a deployment (per-agent reasons in a 409's details).
  "EE-PLACE-NO-AGENT": "No agent fits the deployment; error.details lists every agent considered and why.",
  "EE-PLACE-NODE-SIZE": "Placement: the agent's node_size is not the one requested.",
  "EE-PLACE-DATACENTER": "Placement: the agent's datacenter is not the one requested.",
  "EE-PLACE-NOT-ATTESTED": "Placement: the agent's last re-attestation failed or is stale.",
  "EE-PLACE-BUSY": "Placement: the agent already runs or is deploying a workload.",
  "EE-PLACE-STALE": "Placement: the agent missed its heartbeats or is not registered yet.",
  "EE-PLACE-NOT-REQUESTED": "Placement: the request named a different agent_id.",
  "EE-PLACE-INSUFFICIENT-FUNDS":
    "The deploying tenant (the caller's account) cannot pay one billing period on the chosen node_size.",
  "EE-PLACE-DEDICATED": "Placement: the agent is dedicated to another tenant.",
  "EE-PLACE-AGENT-DRAINED": "Placement: an admin drained the agent (here or on the federation master).",
  "EE-PLACE-DC-DEGRADED":
    "Placement: the agent is behind a datacenter CP the master has not heard from within the threshold.",
  // Federation: a master or dc CP and its NATS JetStream link (docs/federation.md).
  "EE-FED-UNAVAILABLE":
    "The CP cannot reach its nats-server, or the dc a command or relayed read is for (even degraded) did not answer.",
  "EE-FED-DESIRED-SIGNATURE":
    "A desired-state value from the hub is malformed or not signed by the master's key; the dc refuses it.",
  "EE-FED-DESIRED-ROLLBACK":
    "A desired-state value from the hub is older than (or differs at) the snapshot the dc applied; refused.",
  "EE-FED-DESIRED-SCHEMA":
    "A desired-state value signed by the master holds fields or values this dc does not know; refused (upgrade it).",
  // Capacity: warm targets, launch orders and their leases (reason codes in preflight and order reasons too).
  "EE-CAP-ORDER-STATE":
    "The launch order is not in a state that allows this progress (e.g. provisioning a fulfilled order).",
  "EE-CAP-LEASE-LOST":
    "The launch order is no longer claimed by this caller: its lease expired or it was reclaimed.",
  "EE-CAP-LEASE-EXPIRED":
    "Order reason: the launcher's lease expired before the agent registered; the order is open again.",
  "EE-CAP-NOT-NEEDED": "Order reason: the target was lowered while the order was open; it was cancelled.",
  "EE-CAP-LAUNCH-FAILED":
    "Order reason: the launcher could not start the VM or agent (its output is in the reason).",
  "EE-CAP-WARM-PENDING":
    "Preflight: no agent fits now, but a launch order for this datacenter and node_size is in flight; retry soon.",
  "EE-CAP-NO-ELIGIBLE":
    "Preflight: no agent fits and no launch order is in flight for this datacenter and node_size (set a target).",
  // Conflicts with the current state of a resource.
  "EE-CONFLICT-STATE": "The resource is not in a state that allows this request (e.g. undeploying twice).",
  "EE-CONFLICT-IDEMPOTENCY": "The Idempotency-Key was used before with a different request body.",
  // The agent program giving up (it exits non-zero; its service manager or VM decides what next).
  "EE-AGENT-REGISTRATION-EXHAUSTED":
    "The agent could not register with the control plane within registration.max_attempts attempts.",
  "EE-AGENT-CONNECTIVITY": "The connectivity probe failed failure_threshold times in a row (action exit).",
  // The CP attestation envelope on deploy/undeploy (the agent's cp_envelope policy refused a command).
  "EE-ENV-MISSING":
    "The command carries no CP envelope and the agent's cp_envelope policy needs one (every HTTP write does).",
  "EE-ENV-KEY":
    "The envelope is not signed by the CP key the agent pinned at its first registration (cp-key-pin.json).",
  "EE-ENV-SIGNATURE":
    "The envelope signature does not verify over this command, this deployment and this agent with cp_pubkey.",
  "EE-ENV-QUOTE": "The CP quote is missing (policy required), does not verify, or does not bind cp_pubkey.",
  "EE-ENV-MRTD": "The CP's MRTD is not in the agent's cp_envelope.trusted_mrtds.",
  "EE-ENV-PIN": "The CP's MRTD differs from the one the agent pinned on first sight (cp-pin.json).",
  "EE-ENV-STALE":
    "The envelope's issued_at is more than 5 minutes off the agent's clock, or its nonce was seen before.",
  // REST and generic request errors.
  "EE-AUTH-MISSING": "No bearer token was given.",
  "EE-AUTH-INVALID": "The bearer token is not valid.",
  "EE-AUTH-REVOKED": "The API key was revoked (401).",
  "EE-AUTH-EXPIRED": "The API key or access token has expired (401).",
  "EE-AUTH-SCOPE":
    "The principal is authenticated but lacks the scope the operation needs, or it is admin only (403).",
  "EE-AUTH-THROTTLED":
    "Too many failed authentications from this address; retry after the Retry-After seconds (429).",
  "EE-AUTH-SIGNATURE": "The request's HMAC signature is missing or does not verify with the agent secret.",
  "EE-AUTH-SKEW": "The signed request's timestamp is outside the allowed clock skew.",
  "EE-AUTH-REPLAY": "The signed request was already seen (replay).",
  "EE-AUTH-RATE": "Too many signed requests within the replay window; retry later.",
  "EE-AUTH-WEBHOOK-SIGNATURE":
    "The payment webhook's signature is missing or wrong, or no webhook secret is set.",
  // GitHub Actions OIDC: an ID token offered at POST /api/v2/auth/oidc that the CP will not exchange.
  "EE-OIDC-MALFORMED": "The OIDC token is not a compact JWS of bounded size with a JSON header and claims.",
  "EE-OIDC-ALGORITHM":
    "The OIDC token is not signed with RS256 (HS256, none and every other algorithm are refused).",
  "EE-OIDC-SIGNATURE": "The OIDC token's signature does not verify with a key of the configured JWKS.",
  "EE-OIDC-ISSUER": "The OIDC token's issuer (iss) is not the configured issuer.",
  "EE-OIDC-AUDIENCE": "The OIDC token's audience (aud) does not include the configured audience.",
  "EE-OIDC-EXPIRED": "The OIDC token has expired (exp), with the clock tolerance.",
  "EE-OIDC-NOT-YET-VALID":
    "The OIDC token is not valid yet (nbf or iat in the future), with the clock tolerance.",
  "EE-OIDC-TOO-OLD": "The OIDC token was issued (iat) longer ago than the maximum token age.",
  "EE-OIDC-CLAIMS":
    "A required OIDC claim is missing or malformed (numeric repository_id, repository_owner_id; jti, ref, exp)",
  "EE-OIDC-REPLAY": "The OIDC token (its jti) was already exchanged; each token is usable once.",
  "EE-OIDC-REPLAY-FULL":
    "Too many OIDC tokens are remembered until they expire; retry later (old ones are never forgotten early).",
  "EE-OIDC-NO-BINDING":
    "No OIDC binding matches the token's repository_id (and the owner id, ref, environment a binding sets).",
  "EE-OIDC-BINDING-AMBIGUOUS":
    "Several equally specific OIDC bindings of different accounts or scopes match the token.",
  "EE-OIDC-JWKS-UNAVAILABLE": "The JWKS URL could not be fetched in time or did not hold a valid key set.",
  "EE-BUSY": "The agent is reading as many request bodies as it allows at once; retry later.",
  "EE-REQ-INVALID": "The request is not valid.",
  "EE-NOT-FOUND": "The resource does not exist.",
  "EE-NOT-READY": "The control plane has not rebuilt its runtime state yet.",
  "EE-CONFIG-INVALID": "A configuration value is missing or invalid.",
  "EE-CONFIG-INSECURE-TRANSPORT":
    "The agent's control_plane_url is plain ws:// to a host that is not loopback; use wss://, or set allow_insecure_transport.",
  "EE-INTERNAL": "An internal error; the details are in the server log, never in the response.",
  "EE-CLI-UNREACHABLE": "eectl could not reach the control plane at --cp / EE_CP_URL.",
  "EE-CLI-TIMEOUT": "eectl gave up waiting (--timeout) before the deployment reached a final status.",
  "EE-CLI-USAGE":
    "The eectl command line is not valid: an unknown command or flag, or a missing or extra argument.",
  "EE-CLI-FILE": "eectl cannot read a file named on its command line (missing, a directory, or unreadable).",
  // eectl install (the agent installer).
  "EE-INSTALL-START-FAILED":
    "The installed agent version did not stay running; after an upgrade the previous version runs again.",
  "EE-INSTALL-SERVICE": "The service manager (systemctl, or the --no-systemd supervisor) failed.",
  "EE-INSTALL-NOT-REGISTERED":
    "The installed agent runs but has not registered with its CP within --wait-s; it keeps trying.",
  // A program (control plane, agent, npm start) that cannot start on this host; nothing was left half-made.
  "EE-LISTEN-BUSY":
    "The listen address is in use; the message names it and the flag, key or variable that moves it.",
  "EE-LISTEN-FAILED":
    "Listening failed otherwise (address not on this host, port not allowed); the message names it.",
  "EE-DATA-DIR-UNUSABLE":
    "The data dir cannot be made or used (under a file, permission denied); the message names the path.",
  // TLS: the CP's certificate and key, the CAs eectl and the agent trust for the CP.
  "EE-TLS-INVALID":
    "A TLS certificate, key or CA file is unreadable or not PEM, or the certificate and key do not match; the message names the file and its flag or key.",
  "EE-TLS-UNTRUSTED":
    "The control plane's TLS certificate does not verify against the trusted CAs (eectl: --cacert or EE_CACERT; agent: control_plane_ca) or does not name its host.",
  "EE-DATA-DIR-INSECURE":
    "Group or others can write the data dir, so they could replace its keys or database; chmod go-w it.",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;
export type CodeOf<P extends string> = Extract<ErrorCode, `${P}${string}`>;

/** WebSocket close codes the agent channel uses; documented in spec/protocol.md. */
export const WS_CLOSE = {
  normal: 1000,
  goingAway: 1001,
  tooLarge: 1009,
  internal: 1011,
  protocol: 4000,
  abuse: 4001,
  version: 4002,
  rejected: 4003,
  registerTimeout: 4004,
  /** Never sent: a slow consumer is terminated, as a close frame would queue behind its backlog. */
  slowConsumer: 4008,
  superseded: 4009,
} as const;

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown };
}

/** Base of every typed error. Subclasses fix the family's HTTP status and WS close code. */
export abstract class EeError<C extends ErrorCode = ErrorCode> extends Error {
  abstract readonly httpStatus: number;
  abstract readonly wsClose: number;
  readonly code: C;
  readonly details: unknown;

  constructor(code: C, message?: string, details?: unknown) {
    super(message ?? ERROR_CODES[code]);
    this.code = code;
    this.details = details;
  }

  toBody(): ErrorBody {
    const error: ErrorBody["error"] = { code: this.code, message: this.message };
    if (this.details !== undefined) error.details = this.details;
    return { error };
  }
}

/** A frame on the agent channel broke the wire protocol. */
export class ProtocolError extends EeError<CodeOf<"EE-PROTO-">> {
  override readonly name = "ProtocolError";
  /** 400, except the pending-connection caps, which refuse the WebSocket upgrade itself. */
  get httpStatus(): number {
    if (this.code === "EE-PROTO-PENDING-ADDRESS") return 429;
    return this.code === "EE-PROTO-PENDING-GLOBAL" ? 503 : 400;
  }
  get wsClose(): number {
    switch (this.code) {
      case "EE-PROTO-TOO-LARGE":
        return WS_CLOSE.tooLarge;
      case "EE-PROTO-VERSION":
        return WS_CLOSE.version;
      case "EE-PROTO-ABUSE":
        return WS_CLOSE.abuse;
      case "EE-PROTO-REGISTER-TIMEOUT":
        return WS_CLOSE.registerTimeout;
      case "EE-PROTO-SUPERSEDED":
        return WS_CLOSE.superseded;
      case "EE-PROTO-SLOW-CONSUMER":
        return WS_CLOSE.slowConsumer;
      case "EE-PROTO-SHUTDOWN":
        return WS_CLOSE.goingAway;
      default:
        return WS_CLOSE.protocol;
    }
  }
}

/** A quote or nonce did not prove what it claims; `code` is the reason code. */
export class AttestationError extends EeError<CodeOf<"EE-ATT-">> {
  override readonly name = "AttestationError";
  readonly httpStatus = 422;
  readonly wsClose = WS_CLOSE.rejected;
}

/** Registration policy refused an otherwise well-attested agent. */
export class RegistrationError extends EeError<CodeOf<"EE-REG-">> {
  override readonly name = "RegistrationError";
  readonly httpStatus = 409;
  readonly wsClose = WS_CLOSE.rejected;
}

/** Missing or wrong credentials. */
export class AuthError extends EeError<CodeOf<"EE-AUTH-">> {
  override readonly name = "AuthError";
  get httpStatus(): number {
    if (this.code === "EE-AUTH-SCOPE") return 403;
    return this.code === "EE-AUTH-THROTTLED" ? 429 : 401;
  }
  readonly wsClose = WS_CLOSE.rejected;
}

/**
 * An OIDC token the CP will not exchange for an access token: 401, like any bad credential, except when the CP
 * could not fetch its JWKS (503: the caller did nothing wrong) or holds too many unexpired jtis (503, retry).
 */
export class OidcError extends EeError<CodeOf<"EE-OIDC-">> {
  override readonly name = "OidcError";
  readonly wsClose = WS_CLOSE.rejected;
  get httpStatus(): number {
    return this.code === "EE-OIDC-JWKS-UNAVAILABLE" || this.code === "EE-OIDC-REPLAY-FULL" ? 503 : 401;
  }
}

/** A request or configuration that does not validate. */
export class ValidationError extends EeError<"EE-REQ-INVALID" | CodeOf<"EE-CONFIG-">> {
  override readonly name = "ValidationError";
  readonly httpStatus = 400;
  readonly wsClose = WS_CLOSE.protocol;
}

/** A compose file the agent will not run; nothing was created. */
export class ComposeError extends EeError<CodeOf<"EE-COMPOSE-">> {
  override readonly name = "ComposeError";
  readonly httpStatus = 400;
  readonly wsClose = WS_CLOSE.protocol;
}

/** A workload failed on the agent (deploy, gate, run); the agent removed what it created. */
export class WorkloadError extends EeError<CodeOf<"EE-WORKLOAD-">> {
  override readonly name = "WorkloadError";
  readonly httpStatus = 422;
  readonly wsClose = WS_CLOSE.internal;
}

/**
 * No agent can take a deployment; `details.agents` gives each agent's reason codes. A tenant that cannot pay is
 * 402 Payment Required instead of 409: agents would fit, and a deposit (not another request) is what helps.
 */
export class PlacementError extends EeError<CodeOf<"EE-PLACE-">> {
  override readonly name = "PlacementError";
  readonly wsClose = WS_CLOSE.protocol;
  get httpStatus(): number {
    return this.code === "EE-PLACE-INSUFFICIENT-FUNDS" ? 402 : 409;
  }
}

/** A launch order cannot move as asked (its state, or a lease the caller no longer holds). */
export class CapacityError extends EeError<CodeOf<"EE-CAP-">> {
  override readonly name = "CapacityError";
  readonly httpStatus = 409;
  readonly wsClose = WS_CLOSE.protocol;
}

/** The request conflicts with the resource's current state or with an earlier request. */
export class ConflictError extends EeError<CodeOf<"EE-CONFLICT-">> {
  override readonly name = "ConflictError";
  readonly httpStatus = 409;
  readonly wsClose = WS_CLOSE.protocol;
}

/** The agent program gives up; the CLI exits non-zero with this code. */
export class AgentExitError extends EeError<CodeOf<"EE-AGENT-">> {
  override readonly name = "AgentExitError";
  readonly httpStatus = 503;
  readonly wsClose = WS_CLOSE.goingAway;
}

/** The agent refused a CP command (deploy, undeploy): its CP envelope is missing or does not satisfy the policy. */
export class EnvelopeError extends EeError<CodeOf<"EE-ENV-">> {
  override readonly name = "EnvelopeError";
  readonly httpStatus = 403;
  readonly wsClose = WS_CLOSE.rejected;
}

/**
 * The proxy cannot reach a workload. Not WorkloadError's 422: the caller's request was fine, the gateway has
 * nothing (503, EE-WORKLOAD-NONE) or nothing that answers (502, EE-WORKLOAD-UNREACHABLE), the statuses HTTP
 * clients and load balancers already treat as "retry elsewhere or later".
 */
export class GatewayError extends EeError<"EE-WORKLOAD-NONE" | "EE-WORKLOAD-UNREACHABLE"> {
  override readonly name = "GatewayError";
  readonly wsClose = WS_CLOSE.internal;
  get httpStatus(): number {
    return this.code === "EE-WORKLOAD-NONE" ? 503 : 502;
  }
}

/**
 * The quote provider cannot give this caller a quote (failed, or saturated). Not AttestationError: that family
 * answers 422 (the caller's evidence is bad), while here the caller did nothing wrong and the service is
 * unavailable, so 503 — the same stable code, EE-ATT-PROVIDER, that the CP link reports for provider failures.
 */
export class QuoteUnavailableError extends EeError<"EE-ATT-PROVIDER"> {
  override readonly name = "QuoteUnavailableError";
  readonly httpStatus = 503;
  readonly wsClose = WS_CLOSE.internal;
}

/** The agent's HTTP API holds as many request bodies in memory as it allows; the caller may retry (503). */
export class BusyError extends EeError<"EE-BUSY"> {
  override readonly name = "BusyError";
  readonly httpStatus = 503;
  readonly wsClose = WS_CLOSE.internal;
}

export class NotFoundError extends EeError<"EE-NOT-FOUND"> {
  override readonly name = "NotFoundError";
  readonly httpStatus = 404;
  readonly wsClose = WS_CLOSE.protocol;
}

export class NotReadyError extends EeError<"EE-NOT-READY"> {
  override readonly name = "NotReadyError";
  readonly httpStatus = 503;
  readonly wsClose = WS_CLOSE.goingAway;
}

export class InternalError extends EeError<"EE-INTERNAL"> {
  override readonly name = "InternalError";
  readonly httpStatus = 500;
  readonly wsClose = WS_CLOSE.internal;
}

/** A federated CP cannot use its NATS JetStream link (at start, or to queue a command for a dc). */
export class FederationError extends EeError<CodeOf<"EE-FED-">> {
  override readonly name = "FederationError";
  readonly httpStatus = 503;
  readonly wsClose = WS_CLOSE.internal;
}

/** eectl install could not bring the agent service to the state asked for; it says what it left running. */
export class InstallError extends EeError<CodeOf<"EE-INSTALL-">> {
  override readonly name = "InstallError";
  readonly httpStatus = 500;
  readonly wsClose = WS_CLOSE.internal;
}

/** A program cannot start on this host (its port is taken, its data dir is unusable); it started nothing. */
export class StartupError extends EeError<CodeOf<"EE-LISTEN-"> | CodeOf<"EE-DATA-DIR-">> {
  override readonly name = "StartupError";
  readonly httpStatus = 500;
  readonly wsClose = WS_CLOSE.internal;
}

/** TLS material that cannot be used, or a CP certificate the client does not trust; never on the wire. */
export class TlsError extends EeError<CodeOf<"EE-TLS-">> {
  override readonly name = "TlsError";
  readonly httpStatus = 500;
  readonly wsClose = WS_CLOSE.internal;
}

/** eectl's own failures before or beside any request (EE-CLI-*); never on the wire, so no family row below. */
export class CliError extends EeError<CodeOf<"EE-CLI-">> {
  override readonly name = "CliError";
  readonly httpStatus = 400;
  readonly wsClose = WS_CLOSE.protocol;
}

/**
 * The stable code anything thrown carries, when it is one this build knows (typed errors, or an error rebuilt from
 * a peer's code); null otherwise, for the caller to give the fallback its context calls for.
 */
export function errorCodeOf(err: unknown): ErrorCode | null {
  const code = typeof err === "object" && err !== null && "code" in err ? err.code : undefined;
  return typeof code === "string" && Object.hasOwn(ERROR_CODES, code) ? (code as ErrorCode) : null;
}

/** Turns anything thrown into a typed error; unknown errors become EE-INTERNAL without leaking their text. */
export function toEeError(err: unknown): EeError {
  if (err instanceof EeError) return err;
  return new InternalError("EE-INTERNAL");
}

/**
 * Each family's class by code prefix. The classes fix their families only in their types, so the wire side
 * needs this one runtime table; a family without a row here would come back as EE-INTERNAL.
 */
const FAMILIES: [prefix: string, cls: new (code: never, message?: string, details?: unknown) => EeError][] = [
  ["EE-PROTO-", ProtocolError],
  ["EE-ATT-", AttestationError],
  ["EE-REG-", RegistrationError],
  ["EE-AUTH-", AuthError],
  ["EE-OIDC-", OidcError],
  ["EE-COMPOSE-", ComposeError],
  ["EE-WORKLOAD-", WorkloadError],
  ["EE-PLACE-", PlacementError],
  ["EE-CONFLICT-", ConflictError],
  ["EE-CAP-", CapacityError],
  ["EE-AGENT-", AgentExitError],
  ["EE-ENV-", EnvelopeError],
  ["EE-INSTALL-", InstallError],
  ["EE-FED-", FederationError],
  ["EE-LISTEN-", StartupError],
  ["EE-DATA-DIR-", StartupError],
  ["EE-TLS-", TlsError],
  ["EE-NOT-FOUND", NotFoundError],
  ["EE-BUSY", BusyError],
  ["EE-NOT-READY", NotReadyError],
  ["EE-REQ-", ValidationError],
  ["EE-CONFIG-", ValidationError],
];

/**
 * Rebuilds a typed error from a code received on the wire (an agent's `error` frame relayed to a REST caller),
 * so the family's HTTP status applies; a code this build does not know becomes EE-INTERNAL.
 */
export function errorFromCode(code: string, message: string, details?: unknown): EeError {
  if (!Object.hasOwn(ERROR_CODES, code))
    return new InternalError("EE-INTERNAL", `peer error ${code}: ${message}`, details);
  const match = FAMILIES.find(([prefix]) => code.startsWith(prefix));
  return match
    ? new match[1](code as never, message, details)
    : new InternalError("EE-INTERNAL", message, details);
}
