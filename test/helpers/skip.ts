// One policy for tests that need something this machine may lack (the Docker engine, Debian's docker-registry,
// PostgreSQL): without it a test is skipped visibly — a "SKIPPED" line under the test in ava's output (t.log) and,
// when the test process ends, one summary line on stderr counting what was skipped and why — and it fails
// instead when the requirement's variable is 1 (EE_REQUIRE_DOCKER, EE_REQUIRE_POSTGRES, as CI sets them). The
// test itself just returns: the skip counts as its assertion (ava fails a test that made none).
import type { ExecutionContext } from "ava";

const skipped = new Map<string, number>();

/** The variables that turn a skip into a failure, read by name so docs/environment.md's check sees them. */
const REQUIRE = {
  EE_REQUIRE_DOCKER: () => process.env.EE_REQUIRE_DOCKER,
  EE_REQUIRE_POSTGRES: () => process.env.EE_REQUIRE_POSTGRES,
};

process.once("exit", () => {
  if (skipped.size === 0) return;
  const parts = [...skipped].map(([what, n]) => `${n} for want of ${what}`);
  process.stderr.write(`SKIPPED tests in this file: ${parts.join(", ")}\n`);
});

/**
 * Records that the test cannot run without `what` (`why` says what was tried): a failure when
 * the requirement's variable is "1", else a visible skip. The caller returns right after.
 */
export function skipUnavailable(
  t: ExecutionContext,
  what: string,
  why: string,
  requireVar: keyof typeof REQUIRE,
): void {
  const notice = `${what} is not available (${why})`;
  if (REQUIRE[requireVar]() === "1") {
    t.fail(`${notice}; ${requireVar}=1 makes this a failure`);
    return;
  }
  t.log(`SKIPPED: ${notice}; set ${requireVar}=1 to make this a failure`);
  skipped.set(what, (skipped.get(what) ?? 0) + 1);
  t.pass();
}
