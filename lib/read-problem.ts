// Why a file named by an operator (a flag, a config key) could not be read, in words rather than an errno, so
// every program's "cannot read FILE" error reads the same. Imports nothing.

const WHY: Record<string, string> = {
  ENOENT: "no such file",
  EISDIR: "is a directory",
  EACCES: "permission denied",
  ENOTDIR: "a parent of it is not a directory",
};

/** A short reason for a failed read: the words for a known errno, else the errno or message itself. */
export function readProblem(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code ?? "";
  return WHY[code] ?? `cannot be read (${code || String(err)})`;
}
