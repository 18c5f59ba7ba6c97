// `eectl attest …`: attestation operator commands. `attest dev-init` creates the development attestation root
// that dev agents sign quotes with and that a CP trusts only with --dev-attestation.
// Imports attestation/dev-pki.ts and cli/base.ts.
import { Command, Option } from "clipanion";
import { devInit } from "../../attestation/dev-pki.ts";
import { EeCommand } from "../base.ts";

export class AttestDevInitCommand extends EeCommand {
  static override paths = [["attest", "dev-init"]];
  static override usage = Command.Usage({
    category: "Attestation",
    description: "Create a development attestation root (NOT for production)",
    details: `
      Writes a development PKI into DIR (created with mode 0700): a self-signed root CA, a PCK CA, a PCK leaf
      with its key, and an attestation key (keys are mode 0600). The dev quote provider signs real-format TDX
      quotes with it, so the control plane runs its normal verifier on them.

      A control plane accepts these quotes only when started with \`--dev-attestation DIR\`; it needs just
      DIR/root-ca.pem. Agents with \`attestation.provider: dev\` need the whole directory.

      An existing root is never replaced unless \`--force\` is given; every agent signing with the old one
      then fails attestation until it gets the new directory.
    `,
    examples: [
      ["Create a dev attestation root", "eectl attest dev-init --dir ./.easyenclave/dev-attestation"],
      ["Replace an existing one", "eectl attest dev-init --dir ./.easyenclave/dev-attestation --force"],
    ],
  });

  dir = Option.String("--dir", {
    required: true,
    description: "Directory to write the development PKI into",
  });
  force = Option.Boolean("--force", false, { description: "Replace an existing development root in DIR" });

  async run(): Promise<number> {
    const result = await devInit(this.dir, { force: this.force });
    const out = this.context.stdout;
    out.write(`development attestation root created in ${result.dir} (NOT for production)\n`);
    for (const file of result.files) out.write(`  ${file}\n`);
    out.write(`root SHA-256 fingerprint: ${result.rootFingerprint}\n`);
    out.write(`trust it on a control plane with: --dev-attestation ${result.dir}\n`);
    return 0;
  }
}
