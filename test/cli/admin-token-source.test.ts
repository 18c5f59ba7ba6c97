// Where `eectl control-plane` takes its admin token from: --admin-token-file (first line; group/other-writable
// refused, group/other-readable warned), --admin-token (warned: visible in ps), else EE_ADMIN_TOKEN.
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { adminTokenFrom } from "../../cli/admin-token-source.ts";
import { tempDir } from "../helpers/temp.ts";

const TOKEN = "file-admin-token-0123456789";

function tokenFile(t: Parameters<typeof tempDir>[0], mode: number, text = `${TOKEN}\n`): string {
  const file = join(tempDir(t, "ee-token-"), "admin-token");
  writeFileSync(file, text);
  chmodSync(file, mode);
  return file;
}

async function from(s: { flag?: string; file?: string; env?: string }) {
  const warnings: string[] = [];
  const token = await adminTokenFrom({ flag: s.flag, file: s.file, env: s.env }, (_f, m) => warnings.push(m));
  return { token, warnings };
}

test("a 0600 file gives its first line, silently, ahead of the environment", async (t) => {
  t.deepEqual(
    await from({ file: tokenFile(t, 0o600, `${TOKEN}\r\nsecond line\n`), env: "env-token-0123456789" }),
    {
      token: TOKEN,
      warnings: [],
    },
  );
});

test("a file group or others can read is used with a warning", async (t) => {
  const { token, warnings } = await from({ file: tokenFile(t, 0o644) });
  t.is(token, TOKEN);
  t.is(warnings.length, 1);
  t.regex(warnings[0]!, /readable by group or others/);
  t.false(warnings[0]!.includes(TOKEN), "the warning never carries the token");
});

for (const mode of [0o666, 0o620, 0o602]) {
  test(`a file group or others can write (${mode.toString(8)}) is refused`, async (t) => {
    await t.throwsAsync(from({ file: tokenFile(t, mode) }), {
      code: "EE-CONFIG-INVALID",
      message: /group or others can write it/,
    } as never);
  });
}

test("a missing file is EE-CLI-FILE, an empty one EE-CONFIG-INVALID, both sources at once EE-CONFIG-INVALID", async (t) => {
  await t.throwsAsync(from({ file: "/nonexistent/admin-token" }), { code: "EE-CLI-FILE" } as never);
  await t.throwsAsync(from({ file: tokenFile(t, 0o600, "\n") }), { code: "EE-CONFIG-INVALID" } as never);
  await t.throwsAsync(from({ flag: TOKEN, file: tokenFile(t, 0o600) }), {
    code: "EE-CONFIG-INVALID",
  } as never);
});

test("--admin-token still works, with a warning that it shows in ps; the environment is the fallback", async (t) => {
  const flag = await from({ flag: TOKEN, env: "env-token-0123456789" });
  t.is(flag.token, TOKEN);
  t.regex(flag.warnings[0] ?? "", /ps/);
  t.deepEqual(await from({ env: "env-token-0123456789" }), { token: "env-token-0123456789", warnings: [] });
  t.deepEqual(await from({ env: "" }), { token: undefined, warnings: [] });
});
