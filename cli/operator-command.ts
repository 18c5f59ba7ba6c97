// Base of the operator commands that talk to a control plane over REST: --cp, --token and --cacert (with
// EE_CP_URL, EE_TOKEN and EE_CACERT, then the `eectl login` profile, as fallbacks). Options must be direct class
// fields for clipanion to see them, hence a base class.
import { Option } from "clipanion";
import { EeCommand } from "./base.ts";
import { readProfile } from "./profile.ts";
import { RestClient } from "./rest-client.ts";

export abstract class OperatorCommand extends EeCommand {
  cp = Option.String("--cp", {
    description: "Control plane URL (default: $EE_CP_URL, else http://127.0.0.1:8080)",
  });
  token = Option.String("--token", { description: "Bearer token (default: $EE_TOKEN)" });
  cacert = Option.String("--cacert", {
    description:
      "PEM CA bundle to trust for an https control plane instead of the system's (default: $EE_CACERT)",
  });

  /** Flags, else the environment, else the profile `eectl login` saved. */
  client(): RestClient {
    // An empty variable counts as unset, as it does for RestClient's own fallbacks.
    const cp = this.cp ?? (process.env.EE_CP_URL || undefined);
    const token = this.token ?? (process.env.EE_TOKEN || undefined);
    const profile = cp === undefined || token === undefined ? readProfile() : null;
    // EE_CACERT is left to RestClient, which names it in its errors; the profile's CA comes after it.
    const cacert = this.cacert ?? (process.env.EE_CACERT ? undefined : profile?.cacert);
    return new RestClient(cp ?? profile?.cp, token ?? profile?.token, cacert);
  }
}
