// spec/errors.ts: codes received on the wire come back as the typed error of their family; the code of anything
// thrown is read one way (errorCodeOf), known codes only.
import test from "ava";
import {
  ERROR_CODES,
  type ErrorCode,
  errorCodeOf,
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

test("errorCodeOf gives the code a thrown error carries only when this build knows it", (t) => {
  t.is(errorCodeOf(new WorkloadError("EE-WORKLOAD-ENGINE", "down")), "EE-WORKLOAD-ENGINE");
  t.is(errorCodeOf(errorFromCode("EE-ATT-QUOTE-MALFORMED", "relayed")), "EE-ATT-QUOTE-MALFORMED");
  t.is(errorCodeOf({ code: "EE-REG-NOT-ALLOWED-EXTRA" }), null, "an EE- code this build does not know");
  t.is(errorCodeOf(Object.assign(new Error("no such file"), { code: "ENOENT" })), null, "a Node error code");
  t.is(errorCodeOf({ code: 42 }), null);
  t.is(errorCodeOf(new Error("untyped")), null);
  t.is(errorCodeOf("EE-INTERNAL"), null, "a bare string is no error");
  t.is(errorCodeOf(null), null);
  t.is(errorCodeOf({ code: "toString" }), null, "inherited names are not codes");
});
