// The agent's answer to the CP's periodic re-attestation: one request at a time, quoting over the CP's nonce
// (purpose `refresh`, or `deployed` with the running workload's compose hash) and answering with the quote or an error. Pure: the quote actor and the two send actions
// are provided by agent/cp-client.ts.
import { assign, fromPromise, setup } from "xstate";
import type { ErrorCode } from "../spec/errors.ts";

/** States of the refresh machine. */
export const REFRESH_STATES = [
  /** Waiting for the CP's next attest request. */
  "idle",
  /** Getting a quote over the request's nonce; further requests are answered as busy. */
  "quoting",
] as const;
export type RefreshState = (typeof REFRESH_STATES)[number];

export interface RefreshRequest {
  id: number | undefined;
  nonce: Uint8Array;
}

export type RefreshEvent = { type: "ATTEST"; request: RefreshRequest };

/** The quote and what it binds: `deployed` (with the running workload's compose hash) or plain `refresh`. */
export interface RefreshAnswer {
  quote: Uint8Array;
  purpose: "refresh" | "deployed";
  compose_hash?: string;
  workload_hash?: string;
}

export const attestationRefreshMachine = setup({
  types: {
    context: {} as { request: RefreshRequest | null; answered: number; failed: number },
    events: {} as RefreshEvent,
  },
  actors: {
    quote: fromPromise<RefreshAnswer, RefreshRequest>(async () => {
      throw new Error("quote must be provided by the CP client");
    }),
  },
  actions: {
    sendAttestation: (_, _params: { re: number | undefined; answer: RefreshAnswer }) => {},
    sendFailure: (_, _params: { re: number | undefined; code: ErrorCode; message: string }) => {},
  },
}).createMachine({
  id: "attestationRefresh",
  context: { request: null, answered: 0, failed: 0 },
  initial: "idle",
  states: {
    idle: {
      on: { ATTEST: { target: "quoting", actions: assign({ request: ({ event }) => event.request }) } },
    },
    quoting: {
      invoke: {
        src: "quote",
        input: ({ context }) => context.request!,
        onDone: {
          target: "idle",
          actions: [
            {
              type: "sendAttestation",
              params: ({ context, event }) => ({ re: context.request?.id, answer: event.output }),
            },
            assign(({ context }) => ({ request: null, answered: context.answered + 1 })),
          ],
        },
        onError: {
          target: "idle",
          actions: [
            {
              type: "sendFailure",
              params: ({ context }) => ({
                re: context.request?.id,
                code: "EE-ATT-PROVIDER",
                message: "the quote provider failed",
              }),
            },
            assign(({ context }) => ({ request: null, failed: context.failed + 1 })),
          ],
        },
      },
      on: {
        ATTEST: {
          actions: {
            type: "sendFailure",
            params: ({ event }) => ({
              re: event.request.id,
              code: "EE-PROTO-UNEXPECTED",
              message: "a re-attestation is already in progress",
            }),
          },
        },
      },
    },
  },
});
