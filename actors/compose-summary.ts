// What the CP needs from a compose text before it places it: the hash agents will bind into their quotes and the
// service names. Parsed with the CP's rules (bind mounts are the agent's to judge against its allowlist; everything
// else the subset refuses is refused here, early). Summaries are cached by text: CI sends one compose to many
// agents, and the YAML parse was the largest single cost of a deploy in test/load. Imports compose/ and lib/.

import { type ComposeProject, composeHash, parseCompose } from "../compose/compose.ts";
import { pinnedDigest } from "../compose/images.ts";
import { BoundedCache } from "../lib/bounded-cache.ts";

export interface ComposeSummary {
  /** composeHash of the project and, when there is one, the build context. */
  hash: string;
  services: string[];
  /** `service (ref)` of every service whose image is not pinned by `@sha256:` digest (built ones are exempt). */
  unpinned: string[];
}

const ENTRIES = 64;
/** Longer texts are parsed every time, so the cache holds at most ENTRIES × this many characters. */
const MAX_CACHED_CHARS = 64 * 1024;
const CP_RULES = { bindAllowlist: ["/"] };

export class ComposeSummaries {
  readonly #cache = new BoundedCache<string, { project: ComposeProject; hash: string }>(ENTRIES);

  /** Throws the ComposeError of an invalid text (never cached, so it is thrown every time). */
  summarize(compose: string, context?: Uint8Array): ComposeSummary {
    let entry = this.#cache.get(compose);
    if (entry === undefined) {
      const project = parseCompose(compose, CP_RULES);
      entry = { project, hash: composeHash(project) };
      if (compose.length <= MAX_CACHED_CHARS) this.#cache.set(compose, entry);
    }
    return {
      hash: context ? composeHash(entry.project, context) : entry.hash,
      services: entry.project.services.map((s) => s.name),
      unpinned: entry.project.services
        .filter((s) => !s.build && s.image !== undefined && pinnedDigest(s.image) === null)
        .map((s) => `${s.name} (${s.image})`),
    };
  }
}
