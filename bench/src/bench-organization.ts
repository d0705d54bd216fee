/**
 * The organization every Sluice the benchmarks start is configured with. The caller holds an AI
 * key (auth); the provider belongs to another user and is shared with the caller through a group
 * grant (permission); the key draws on a group allocation with a monthly period and has its own
 * cap, both far too large to refuse, and the model has a price, so each request reserves a worst
 * case and commits its real cost (budget, metering).
 */
import type { OrganizationConfig } from "@sluice/core";
import { upstreamModel } from "./workload.js";

const owner = "olivia";
const caller = "bench-user";
const providerName = "upstream";

/** The model id clients name: `<owner>:<provider>/<upstream model>`. */
export const benchModelId = `${owner}:${providerName}/${upstreamModel}`;

/** $1e9 in micro-dollars: never refuses, and keeps every sum far below 2^53. */
const neverRefuses = 1_000_000_000_000_000;

/** The organization, its one provider an OpenAI-compatible server at `upstreamOrigin`. */
export function benchOrganization(upstreamOrigin: string): OrganizationConfig {
  return {
    users: [{ id: owner }, { id: caller }],
    groups: [{ id: "bench", name: "Benchmark", members: [caller] }],
    allocations: [{ id: "alc_bench", name: "Benchmark", owner: { type: "group", groupId: "bench" }, limit: neverRefuses, period: "month" }],
    providers: [
      {
        owner,
        name: providerName,
        kind: "openai-compatible",
        settings: { endpoint: `${upstreamOrigin}/v1/chat/completions`, models: [upstreamModel] },
        grants: [{ type: "group", groupId: "bench" }],
      },
    ],
    // Per million tokens: $2.50 in, $10 out.
    prices: [{ provider: `${owner}:${providerName}`, model: upstreamModel, input: 2_500_000, output: 10_000_000 }],
    keys: [{ userId: caller, name: "bench", allocationId: "alc_bench", limit: neverRefuses / 10 }],
  };
}
