// The CP's configuration files and keys as `eectl control-plane` checks them before starting: the measurement
// policy file and the federation master's public key. Loaded lazily by the command (both bring zod).

export { masterPublicKey } from "../actors/federation/desired-state.ts";
export { loadPolicyFile } from "../actors/policy-file.ts";
