// Frame decoding: every way a frame can be wrong gets its own stable code, and valid frames round-trip.
import test from "ava";
import { pack } from "msgpackr";
import { MAX_FRAME_BYTES } from "../../spec/protocol.ts";
import { decodeFrame, encodeFrame, FrameError } from "../../transport/frame.ts";

const hb = { seq: 1, sent_at: 1, workload: null };

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof FrameError ? err.code : `not a FrameError: ${String(err)}`;
  }
  return undefined;
}

test("a heartbeat round-trips with its ids", (t) => {
  const env = decodeFrame(encodeFrame("heartbeat", hb, { id: 7 }), "cp");
  t.is(env.type, "heartbeat");
  t.is(env.id, 7);
  t.deepEqual(env.body, hb);
});

test("binary fields stay binary", (t) => {
  const nonce = new Uint8Array(32).fill(9);
  const env = decodeFrame(encodeFrame("challenge", { nonce, expires_at: 5, server_time: 1 }), "agent");
  t.true(env.type === "challenge" && env.body.nonce instanceof Uint8Array);
  t.deepEqual(env.type === "challenge" ? [...env.body.nonce] : [], [...nonce]);
});

const bad: [string, () => Uint8Array, string][] = [
  ["garbage bytes", () => new Uint8Array([0xc1, 0xc1, 0xc1]), "EE-PROTO-UNDECODABLE"],
  ["empty frame", () => new Uint8Array(), "EE-PROTO-UNDECODABLE"],
  ["a msgpack string", () => pack("hello"), "EE-PROTO-UNDECODABLE"],
  ["an envelope without type", () => pack({ v: 1, body: {} }), "EE-PROTO-UNDECODABLE"],
  ["a negative id", () => pack({ v: 1, type: "heartbeat", id: -1, body: hb }), "EE-PROTO-UNDECODABLE"],
  ["version 2", () => pack({ v: 2, type: "heartbeat", body: hb }), "EE-PROTO-VERSION"],
  ["an unknown type", () => pack({ v: 1, type: "launch_missiles", body: {} }), "EE-PROTO-UNKNOWN-TYPE"],
  [
    "a CP-only type sent to the CP",
    () => pack({ v: 1, type: "challenge", body: {} }),
    "EE-PROTO-UNKNOWN-TYPE",
  ],
  ["a prototype key as type", () => pack({ v: 1, type: "__proto__", body: {} }), "EE-PROTO-UNKNOWN-TYPE"],
  ["a body of the wrong type", () => pack({ v: 1, type: "heartbeat", body: "x" }), "EE-PROTO-INVALID-BODY"],
  ["a missing field", () => pack({ v: 1, type: "heartbeat", body: { seq: 1 } }), "EE-PROTO-INVALID-BODY"],
  [
    "a float seq",
    () => pack({ v: 1, type: "heartbeat", body: { seq: 1.5, sent_at: 1 } }),
    "EE-PROTO-INVALID-BODY",
  ],
  [
    "a register with a short nonce",
    () =>
      pack({
        v: 1,
        type: "register",
        body: {
          vm_name: "a",
          node_size: "tiny",
          datacenter: "x:y",
          agent_pubkey: new Uint8Array(32),
          nonce: new Uint8Array(31),
          quote: new Uint8Array(10),
          pop: new Uint8Array(64),
        },
      }),
    "EE-PROTO-INVALID-BODY",
  ],
  [
    "a register with an uppercase vm_name",
    () =>
      pack({
        v: 1,
        type: "register",
        body: {
          vm_name: "VM",
          node_size: "tiny",
          datacenter: "x:y",
          agent_pubkey: new Uint8Array(32),
          nonce: new Uint8Array(32),
          quote: new Uint8Array(10),
          pop: new Uint8Array(64),
        },
      }),
    "EE-PROTO-INVALID-BODY",
  ],
  ["an oversized frame", () => new Uint8Array(MAX_FRAME_BYTES + 1), "EE-PROTO-TOO-LARGE"],
];

for (const [name, make, code] of bad) {
  test(`refuses ${name} with ${code}`, (t) => {
    t.is(
      codeOf(() => decodeFrame(make(), "cp")),
      code,
    );
  });
}

test("errors after the envelope point back at the offending frame id", (t) => {
  try {
    decodeFrame(pack({ v: 1, type: "heartbeat", id: 42, body: {} }), "cp");
    t.fail();
  } catch (err) {
    t.true(err instanceof FrameError);
    t.is((err as FrameError).re, 42);
  }
});
