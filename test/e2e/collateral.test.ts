// A CP started with --collateral end to end: expired files are warned about at start, a platform the collateral
// does not cover is warned about once (not per registration) and the agent view says why it has no TCB status,
// and a tcb policy refuses such a platform. Dev agents (FMSPC ee0000000000, which no collateral covers) against
// the real QuoteCollateralV3 samples in ../shared/tdx-quotes.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import test from "ava";
import { loadCollateralStore } from "../../attestation/collateral-store.ts";
import { DEV_FMSPC } from "../../attestation/dev-pki.ts";
import { policySchema } from "../../attestation/policy.ts";
import { createLogger } from "../../lib/log.ts";
import { RawAgent, startTestCp } from "../helpers/cluster.ts";

const COLLATERAL = fileURLToPath(new URL("../../../shared/tdx-quotes/collateral/", import.meta.url));
const maybe = existsSync(COLLATERAL) ? test : test.skip;

type Line = Record<string, unknown> & { level: number; msg: string };

interface AgentView {
  attestation: {
    collateral: {
      fmspc: string | null;
      tcb_status: string | null;
      advisory_ids: string[];
      reason: string | null;
    } | null;
  };
}

maybe(
  "expired collateral and an uncovered platform are each warned about once; the agent view says why",
  async (t) => {
    const lines: Line[] = [];
    const log = createLogger("control-plane", "warn", {
      isTTY: false,
      write: (s: string) => void lines.push(JSON.parse(s) as Line),
    });
    const collateral = loadCollateralStore(COLLATERAL);
    const { cp, devDir, api } = await startTestCp(t, { collateral, log });
    // Every sample's nextUpdate is in the past (the newest is March 2026).
    const expired = lines.filter((l) => l.msg.startsWith("COLLATERAL EXPIRED"));
    t.is(expired.length, collateral.size);

    const agents: RawAgent[] = [];
    for (const vm_name of ["vm-a", "vm-b", "vm-c"]) {
      const raw = await RawAgent.connect(t, cp.wsUrl);
      await raw.register(devDir, { vm_name });
      agents.push(raw);
    }
    const uncovered = lines.filter((l) => l.msg.startsWith("COLLATERAL DOES NOT COVER"));
    t.deepEqual(
      uncovered.map((l) => [l.level, l.fmspc]),
      [[40, DEV_FMSPC]],
      "one line for the platform, not one per registration",
    );
    for (const raw of agents) {
      const { status, body } = await api<AgentView>(`/api/v2/agents/${raw.agentId}`);
      t.is(status, 200);
      t.deepEqual(body.attestation.collateral, {
        fmspc: DEV_FMSPC,
        tcb_status: null,
        advisory_ids: [],
        reason: `the CP's collateral does not cover platform FMSPC ${DEV_FMSPC}: TCB status unknown`,
      });
    }
  },
);

test("without collateral the agent view's collateral is null", async (t) => {
  const { cp, devDir, api } = await startTestCp(t);
  const raw = await RawAgent.connect(t, cp.wsUrl);
  await raw.register(devDir);
  const { body } = await api<AgentView>(`/api/v2/agents/${raw.agentId}`);
  t.is(body.attestation.collateral, null);
});

maybe(
  "a tcb policy refuses a platform the collateral does not cover, and the refusal says why",
  async (t) => {
    const policy = policySchema.parse({ tcb: { mode: "strict" } });
    const { cp, devDir, api } = await startTestCp(t, { collateral: loadCollateralStore(COLLATERAL), policy });
    const raw = await RawAgent.connect(t, cp.wsUrl);
    const { body } = await raw.next("challenge");
    raw.send("register", await raw.registerBody(devDir, body.nonce));
    const error = await raw.next("error");
    t.is(error.body.code, "EE-ATT-TCB-STATUS");
    t.regex(error.body.message, /unknown \(no collateral\)/);
    const rejected = await api<{ events: { data: { reason: string } }[] }>(
      "/api/v2/events?kind=agent.rejected",
    );
    t.is(rejected.body.events[0]?.data.reason, "EE-ATT-TCB-STATUS");
  },
);
