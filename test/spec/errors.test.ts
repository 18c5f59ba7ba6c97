// spec/errors.ts: codes received on the wire come back as the typed error of their family.
import test from "ava";
import {
  ERROR_CODES,
  type ErrorCode,
  errorFromCode,
  InternalError,
  WorkloadError,
} from "../../spec/errors.ts";

test("every known code comes back with its own code; only EE-CLI-* (never on the wire) falls to EE-INTERNAL", (t) => {
  const internal: string[] = [];
  for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
    const err = errorFromCode(code, "relayed");
    if (err.code === code) t.is(err.message, "relayed");
    else internal.push(code);
  }
  t.deepEqual(internal, ["EE-CLI-UNREACHABLE", "EE-CLI-TIMEOUT", "EE-CLI-USAGE", "EE-CLI-FILE"]);
  const busy = errorFromCode("EE-WORKLOAD-BUSY", "busy");
  t.true(busy instanceof WorkloadError);
  t.is(busy.httpStatus, 422);
});

test("an unknown code becomes EE-INTERNAL naming it", (t) => {
  const err = errorFromCode("EE-FUTURE-THING", "new");
  t.true(err instanceof InternalError);
  t.is(err.code, "EE-INTERNAL");
  t.is(err.message, "peer error EE-FUTURE-THING: new");
});
