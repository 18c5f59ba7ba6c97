// What the CP warns about its collateral: files past their earliest nextUpdate (at start), and each platform the
// collateral does not cover (once, not per quote). Real QuoteCollateralV3 samples from ../shared/tdx-quotes.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import {
  expiredCollateral,
  warnExpiredCollateral,
  warnUncoveredPlatforms,
} from "../../actors/collateral-warnings.ts";
import { loadCollateralStore } from "../../attestation/collateral-store.ts";
import { createLogger } from "../../lib/log.ts";

const COLLATERAL = fileURLToPath(new URL("../../../shared/tdx-quotes/collateral/", import.meta.url));
const maybe = existsSync(COLLATERAL) ? test : test.skip;
const B0C06F = join(COLLATERAL, "dcapqvl-fmspcB0C06F000000-2025-06.collateral.json");

type Line = Record<string, unknown> & { level: number; msg: string };

function capture() {
  const lines: Line[] = [];
  const log = createLogger("control-plane", "info", {
    isTTY: false,
    write: (s: string) => void lines.push(JSON.parse(s) as Line),
  });
  return { lines, log };
}

maybe("collateral counts as expired once its earliest nextUpdate has passed", (t) => {
  const store = loadCollateralStore(B0C06F);
  t.deepEqual(expiredCollateral(store, new Date("2025-06-20T00:00:00Z")), []);
  t.deepEqual(expiredCollateral(store, new Date("2025-08-01T00:00:00Z")), [
    { fmspc: "b0c06f000000", file: B0C06F, next_update: "2025-07-19T10:00:35.000Z" },
  ]);
});

maybe("every expired file gets its own loud warn line naming the platform; current files none", (t) => {
  const { lines, log } = capture();
  warnExpiredCollateral(log, loadCollateralStore(B0C06F), new Date("2025-06-20T00:00:00Z"));
  t.deepEqual(lines, []);
  const dir = loadCollateralStore(COLLATERAL);
  warnExpiredCollateral(log, dir, new Date("2030-01-01T00:00:00Z"));
  t.is(lines.length, dir.size);
  for (const l of lines) {
    t.is(l.level, 40);
    t.regex(
      l.msg,
      /^COLLATERAL EXPIRED: .*collateral\.json was due for renewal 20\d\d-.*FMSPC [0-9a-f]{12} /,
    );
  }
  t.like(
    lines.find((l) => l.fmspc === "b0c06f000000"),
    { file: B0C06F, next_update: "2025-07-19T10:00:35.000Z" },
  );
});

maybe("an uncovered platform is warned about once, however many quotes come from it", async (t) => {
  const { lines, log } = capture();
  const source = warnUncoveredPlatforms(loadCollateralStore(COLLATERAL), log);
  const at = new Date();
  for (let i = 0; i < 3; i++) {
    t.is(await source.forQuote({ fmspc: "ee0000000000", pckCa: null }, at), undefined);
    t.truthy(await source.forQuote({ fmspc: "b0c06f000000", pckCa: "platform" }, at));
  }
  t.is(await source.forQuote({ fmspc: "ee0000000001", pckCa: null }, at), undefined);
  t.deepEqual(
    lines.map((l) => [l.level, l.fmspc]),
    [
      [40, "ee0000000000"],
      [40, "ee0000000001"],
    ],
  );
  t.regex(
    lines[0]?.msg ?? "",
    /^COLLATERAL DOES NOT COVER platform FMSPC ee0000000000: .*tcb policy refuses/,
  );
});
