// `eectl config …`: the host side of the agent's config source chain. `config cmdline` turns a config file into
// the kernel parameter the agent reads (easyenclave.configz= or easyenclave.config=), `config drive` into an
// EE_CONFIG config-drive ISO for configs too large for the command line. Both validate the config first.
// Imports agent/config* (agent/config.ts, which loads zod, only when a command runs), spec/errors and cli/base.
import { writeFile } from "node:fs/promises";
import { Command, Option } from "clipanion";
import { DEFAULT_CMDLINE_LIMIT, encodeParam } from "../../agent/config-sources/cmdline.ts";
import { DRIVE_FILE, DRIVE_LABEL } from "../../agent/config-sources/drive.ts";
import { writeIso9660 } from "../../agent/config-sources/iso9660.ts";
import { ValidationError } from "../../spec/errors.ts";
import { EeCommand } from "../base.ts";

const readAgentConfig = async (file: string) => (await import("../../agent/config.ts")).readConfigFile(file);

function parseLimit(text: string): number {
  if (!/^[1-9]\d{0,6}$/.test(text)) {
    throw new ValidationError(
      "EE-REQ-INVALID",
      `--limit ${JSON.stringify(text)} is not a positive byte count`,
    );
  }
  return Number(text);
}

export class ConfigCmdlineCommand extends EeCommand {
  static override paths = [["config", "cmdline"]];
  static override usage = Command.Usage({
    category: "Agent config",
    description: "Encode an agent config as a kernel command-line parameter",
    details: `
      Validates FILE as an agent config and prints the kernel parameter an agent reads it from when it has no
      config file or config drive: \`easyenclave.configz=\` (base64 of the zlib-compressed JSON) when that is
      shorter, else \`easyenclave.config=\` (base64 of the JSON). Relative paths in FILE are made absolute
      against FILE's folder first: the agent refuses relative paths from a command line, which has no folder.

      A parameter longer than \`--limit\` bytes (default ${DEFAULT_CMDLINE_LIMIT}) is refused with
      EE-CONFIG-INVALID: write a config drive instead (\`eectl config drive FILE --out config.iso\`). With
      \`--measure\` (a VM whose boot is measured) a config drive is not an option, since it would add an input the
      measurement does not cover: the config must fit.
    `,
    examples: [
      ["Print the parameter for a config", "eectl config cmdline ./agent.json"],
      ["For a measured VM (fail when too large)", "eectl config cmdline ./agent.json --measure"],
      ["With a tighter budget", "eectl config cmdline ./agent.json --limit 1024"],
    ],
  });

  file = Option.String({ name: "FILE" });
  measure = Option.Boolean("--measure", false, {
    description: "Measurement mode: fail when the config does not fit (no config-drive fallback)",
  });
  limit = Option.String("--limit", {
    description: `Largest parameter in bytes (default ${DEFAULT_CMDLINE_LIMIT})`,
  });

  async run(): Promise<number> {
    const limit = this.limit === undefined ? DEFAULT_CMDLINE_LIMIT : parseLimit(this.limit);
    // As given (defaults are the agent's to fill) but with absolute paths, after checking it the way the agent will.
    const { raw } = await readAgentConfig(this.file);
    const param = encodeParam(JSON.stringify(raw));
    const size = Buffer.byteLength(param);
    if (size > limit) {
      const over = `the parameter is ${size} bytes, above the limit of ${limit}`;
      throw new ValidationError(
        "EE-CONFIG-INVALID",
        this.measure
          ? `measurement mode: the config must fit on the kernel command line (${over})`
          : `${over}; use a config drive instead: eectl config drive ${this.file} --out config.iso`,
        { size, limit },
      );
    }
    this.context.stdout.write(`${param}\n`);
    return 0;
  }
}

export class ConfigDriveCommand extends EeCommand {
  static override paths = [["config", "drive"]];
  static override usage = Command.Usage({
    category: "Agent config",
    description: "Write an agent config onto a config-drive ISO image",
    details: `
      Validates FILE as an agent config and writes an ISO 9660 image labelled \`${DRIVE_LABEL}\` holding it as
      \`/${DRIVE_FILE}\`. Attach the image to the VM as a CD-ROM: the agent looks for it on /dev/sr0, /dev/sr1
      and /dev/cdrom (or \`$EASYENCLAVE_CONFIG_DRIVES\`) when it has no config file. The image depends only on
      the config, so the same config always gives the same bytes. Relative paths in FILE are made absolute against
      FILE's folder first: the agent refuses relative paths from a drive, which has no folder.
    `,
    examples: [["Write a config drive", "eectl config drive ./agent.json --out config.iso"]],
  });

  file = Option.String({ name: "FILE" });
  out = Option.String("--out", { required: true, description: "Image file to write" });

  async run(): Promise<number> {
    // As given (defaults are the agent's to fill) but with absolute paths, after checking it the way the agent will.
    const { raw } = await readAgentConfig(this.file);
    const data = new TextEncoder().encode(`${JSON.stringify(raw, null, 2)}\n`);
    const image = writeIso9660(DRIVE_LABEL, [{ name: DRIVE_FILE.toUpperCase(), data }]);
    await writeFile(this.out, image);
    this.context.stdout.write(`wrote ${this.out} (${image.length} bytes, volume ${DRIVE_LABEL})\n`);
    return 0;
  }
}
