// How much of the OpenAPI documents the tests held a running CP and agent to: run the tests with
// EE_CONTRACT_COVERAGE=DIR (contract.ts appends each checked operation and status there), then
// `npx tsx test/helpers/contract-coverage.ts DIR`. Prints, per document, the operations and the responses
// (operation + status) checked out of those documented, and what was never exercised; the last line is JSON.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { agentContract, type Contract, cpContract } from "./contract.ts";

const dir = process.argv[2];
if (!dir) {
  console.error(
    "usage: tsx test/helpers/contract-coverage.ts DIR (the EE_CONTRACT_COVERAGE the tests ran with)",
  );
  process.exit(2);
}

const seen = new Map<string, Set<string>>();
for (const file of readdirSync(dir).filter((f) => f.endsWith(".jsonl"))) {
  for (const line of readFileSync(join(dir, file), "utf8").split("\n")) {
    if (!line) continue;
    const { document, operation, status } = JSON.parse(line) as {
      document: string;
      operation: string;
      status: string;
    };
    const key = `${document} ${operation}`;
    seen.set(key, (seen.get(key) ?? new Set()).add(status));
  }
}

const summary: Record<string, unknown> = {};
for (const [file, contract] of [
  ["control-plane.yaml", cpContract],
  ["agent-control.yaml", agentContract],
] as [string, Contract][]) {
  const documented = contract.documented();
  let operations = 0;
  let responses = 0;
  let documentedResponses = 0;
  const unexercised: string[] = [];
  const unseenResponses: string[] = [];
  for (const [operation, statuses] of documented) {
    const checked = seen.get(`${file} ${operation}`);
    documentedResponses += statuses.length;
    if (!checked) unexercised.push(operation);
    else operations++;
    for (const status of statuses)
      if (checked?.has(status)) responses++;
      else if (checked) unseenResponses.push(`${operation} ${status}`);
  }
  console.log(
    `spec/${file}: ${operations} of ${documented.size} operations and ${responses} of ${documentedResponses} responses (operation + status) checked`,
  );
  if (unexercised.length) console.log(`  never exercised: ${unexercised.join(", ")}`);
  if (unseenResponses.length) console.log(`  statuses never seen: ${unseenResponses.join(", ")}`);
  summary[file] = {
    operations,
    documented_operations: documented.size,
    responses,
    documented_responses: documentedResponses,
    unexercised,
  };
}
console.log(JSON.stringify(summary));
