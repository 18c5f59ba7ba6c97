// Base of the operator commands that talk to a control plane over REST: --cp, --token and --cacert (with
// EE_CP_URL, EE_TOKEN and EE_CACERT as fallbacks). Options must be direct class fields for clipanion to see them, hence a base class.
import { Option } from "clipanion";
import { EeCommand } from "./base.ts";
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

  client(): RestClient {
    return new RestClient(this.cp, this.token, this.cacert);
  }
}
