// `eectl admin-token rotate`: a new admin token for a control plane's data dir, for an operator who lost the
// printed one (or wants the old one dead). Works on the files, so it needs no token and no running CP.
import { Command, Option } from "clipanion";
import { ADMIN_DIGEST_FILE, rotateAdminToken } from "../../cp/operator.ts";
import { pathKind } from "../../lib/data-dir.ts";
import { ValidationError } from "../../spec/errors.ts";
import { EeCommand } from "../base.ts";
import { jsonFlag } from "../options.ts";

export class AdminTokenRotateCommand extends EeCommand {
  static override paths = [["admin-token", "rotate"]];
  static override usage = Command.Usage({
    description: "Replace the control plane's admin token and print the new one once",
    details: `
      Writes the SHA-256 digest of a new token to DATA_DIR/${ADMIN_DIGEST_FILE} and prints the token (it is not
      stored anywhere else, so keep it). Run it on the CP's host, as a user who can write the data dir; the CP
      may be stopped or running.

      A running CP re-reads the digest file within about a second: the old token stops working and the new one
      works, without a restart. A CP started with \`--admin-token\`, \`--admin-token-file\` or \`$EE_ADMIN_TOKEN\`
      stores that token again at its next start, so remove those too.
    `,
    examples: [
      ["New token for the default data dir", "eectl admin-token rotate --data-dir ./.easyenclave"],
      ["As JSON (for scripts)", "eectl admin-token rotate --data-dir /var/lib/easyenclave --json"],
    ],
  });

  dataDir = Option.String("--data-dir", { required: true, description: "The control plane's data dir" });
  asJson = jsonFlag("Print {admin_token, digest_file} as JSON");

  async run(): Promise<number> {
    if (pathKind(this.dataDir) !== "directory")
      throw new ValidationError(
        "EE-CONFIG-INVALID",
        `--data-dir ${this.dataDir} is not a directory: give the data dir the control plane runs with`,
      );
    const { token, file } = rotateAdminToken(this.dataDir);
    this.print(this.asJson, { admin_token: token, digest_file: file }, (r) =>
      [
        `admin token (shown once): ${r.admin_token}`,
        `its digest is in ${r.digest_file}; a running control plane switches to it within a second`,
        `use it: export EE_TOKEN=${r.admin_token}`,
        "",
      ].join("\n"),
    );
    return 0;
  }
}
