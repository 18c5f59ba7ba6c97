// A supervisor with real parts (dev quotes through the real verifier, the read model, a SQLite event log) over the
// AgentLink a test gives it, and one agent that registers (or re-registers, on a new connection) through it: the
// fixture of the actor tests that drive the supervisor without a transport. Torn down with the test.
import { generateKeyPairSync } from "node:crypto";
import type { ExecutionContext } from "ava";
import { AgentIndex } from "../../actors/agent-index.ts";
import type { AgentLink } from "../../actors/agent-link.ts";
import { NonceBook } from "../../actors/nonce-book.ts";
import { openDatabase } from "../../actors/store/db.ts";
import { EventLog } from "../../actors/store/event-log.ts";
import { Supervisor } from "../../actors/supervisor.ts";
import { rawPublicKey, signPop } from "../../attestation/agent-key.ts";
import { loadDevRootPem } from "../../attestation/dev-pki.ts";
import { DEFAULT_POLICY } from "../../attestation/policy.ts";
import { createDevQuoteProvider } from "../../attestation/providers/dev.ts";
import { reportDataFor } from "../../attestation/report-data.ts";
import { createTrustAnchors } from "../../attestation/trust.ts";
import { silentLogger } from "../../lib/log.ts";
import { devRoot, tempDir, waitFor } from "./cluster.ts";

/** `now`: the supervisor's clock, when a test moves it; the real clock otherwise. */
export async function supervisorFixture(t: ExecutionContext, link: AgentLink, now?: () => number) {
  const devDir = await devRoot();
  const db = openDatabase(tempDir(t));
  const events = new EventLog(db, (err) => t.fail(String(err)));
  const index = new AgentIndex({ staleAfterMs: 60_000 });
  const supervisor = new Supervisor({
    link,
    index,
    events,
    log: silentLogger,
    heartbeatMs: 1000,
    staleAfterMs: 60_000,
    forgetAfterMs: 600_000,
    ...(now ? { now } : {}),
    policy: {
      trust: createTrustAnchors({ devRootPem: loadDevRootPem(devDir) }),
      measurement: DEFAULT_POLICY,
      nodeSizes: new Set(["tiny"]),
    },
  });
  // Registered first, so run last (ava tears down in reverse): a test's own parts over `db` stop before it closes.
  t.teardown(() => {
    supervisor.stopAll();
    events.flush();
    db.close();
  });
  const kp = generateKeyPairSync("ed25519");
  const pub = rawPublicKey(kp.publicKey);
  const nonces = new NonceBook({ ttlMs: 10_000 });
  const quotes = createDevQuoteProvider({ dir: devDir });
  let connId = 0;
  /** Registers (or re-registers, on a new connection) the one agent; resolves with its id once it is connected. */
  const register = async (): Promise<string> => {
    connId++;
    const { nonce } = nonces.issue(connId, Date.now());
    const quote = await quotes.getQuote(reportDataFor("register", nonce, pub));
    const body = {
      vm_name: "vm-x",
      node_size: "tiny",
      datacenter: "baremetal:local",
      agent_pubkey: pub,
      nonce,
      quote,
      pop: signPop(kp.privateKey, nonce),
    };
    const id = supervisor.register({ connId, sessionId: `s${connId}`, nonce, at: Date.now(), body });
    await waitFor("registered", () => index.get(id)?.state === "registered" && index.get(id)?.connected);
    return id;
  };
  return { db, events, index, supervisor, register };
}
