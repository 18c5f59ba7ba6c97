// `eectl login`: stores the CP URL, CA certificate path and token in the operator's profile (0600), which
// operator commands use when neither a flag nor EE_CP_URL/EE_TOKEN names them. Checks the token first.
import { resolve } from "node:path";
import { Command, Option } from "clipanion";
import { EeCommand } from "../base.ts";
import { jsonFlag } from "../options.ts";
import { writeProfile } from "../profile.ts";
import { RestClient } from "../rest-client.ts";

export class LoginCommand extends EeCommand {
  static override paths = [["login"]];
  static override usage = Command.Usage({
    description: "Save a control plane URL, CA and token as the default for operator commands",
    details: `
      Writes $EE_PROFILE (default ~/.config/easyenclave/profile.json) with mode 0600, after checking that the
      token is accepted (GET /api/v2/accounts). Flags and EE_CP_URL / EE_TOKEN still win over the profile.
    `,
    examples: [["With an API key", "eectl login --cp https://cp.example:8443 --cacert ca.pem --token eek_…"]],
  });
  cp = Option.String("--cp", { description: "Control plane URL (default: $EE_CP_URL)" });
  token = Option.String("--token", { description: "Bearer token (default: $EE_TOKEN)" });
  cacert = Option.String("--cacert", { description: "PEM of the CA that signed an https CP's certificate" });
  asJson = jsonFlag("Print {profile, cp} as JSON");

  async run(): Promise<number> {
    const client = new RestClient(this.cp, this.token);
    await client.get("/api/v2/accounts");
    const file = writeProfile({
      cp: client.base,
      token: this.token ?? process.env.EE_TOKEN ?? "",
      ...(this.cacert ? { cacert: resolve(this.cacert) } : {}),
    });
    this.print(this.asJson, { profile: file, cp: client.base }, (r) => `saved ${r.cp} in ${r.profile}\n`);
    return 0;
  }
}
