/**
 * Path 3: the real gateway on a node:http server, every feature on. The caller holds an AI key
 * (auth); the provider belongs to another user and is shared with the caller through a group
 * grant (permission); the key draws on a group allocation with a monthly period and has its own
 * cap, both far too large to refuse, and the model has a price, so each request reserves a worst
 * case and commits its real cost with BigInt arithmetic (budget, metering).
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { randomBytes } from "node:crypto";
import { createOpenAICompatAdapter } from "@sluice/adapter-openai-compat";
import { applyOrganizationConfig, createEventBus, createGateway, createNodeHandler, createPriceBook, createSecretBox } from "@sluice/core";
import type { OrganizationConfig } from "@sluice/core";
import { createMemoryStores } from "@sluice/store-memory";
import { serveControl } from "./server-control.js";
import { keepAliveTimeoutMs, serverOptions, upstreamConnections, upstreamFromEnvironment, upstreamModel } from "./workload.js";

const upstream = upstreamFromEnvironment();
const basePath = "/v1";
const owner = "olivia";
const caller = "bench-user";
const providerName = "upstream";

/** $1e9 in micro-dollars: never refuses, and keeps every sum far below 2^53. */
const neverRefuses = 1_000_000_000_000_000;

const organization: OrganizationConfig = {
  users: [{ id: owner }, { id: caller }],
  groups: [{ id: "bench", name: "Benchmark", members: [caller] }],
  allocations: [{ id: "alc_bench", name: "Benchmark", owner: { type: "group", groupId: "bench" }, limit: neverRefuses, period: "month" }],
  providers: [
    {
      owner,
      name: providerName,
      kind: "openai-compatible",
      settings: { endpoint: `${upstream}/v1/chat/completions`, models: [upstreamModel] },
      grants: [{ type: "group", groupId: "bench" }],
    },
  ],
  // Per million tokens: $2.50 in, $10 out.
  prices: [{ provider: `${owner}:${providerName}`, model: upstreamModel, input: 2_500_000, output: 10_000_000 }],
  keys: [{ userId: caller, name: "bench", allocationId: "alc_bench", limit: neverRefuses / 10 }],
};

const events = createEventBus();
const stores = createMemoryStores({ secretBox: createSecretBox({ key: randomBytes(32) }), events });
const applied = await applyOrganizationConfig({ stores, config: organization });
const gateway = createGateway({
  stores,
  adapters: [createOpenAICompatAdapter({ connections: upstreamConnections })],
  prices: createPriceBook({ prices: applied.prices }),
  events,
});

const server = createServer(serverOptions, createNodeHandler(gateway, { basePath }));
server.keepAliveTimeout = keepAliveTimeoutMs;
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));

const { port } = server.address() as AddressInfo;
const key = applied.createdKeys[0];
if (key === undefined) throw new Error("the organization config created no key");
serveControl(
  {
    origin: `http://127.0.0.1:${port}`,
    path: `${basePath}/chat/completions`,
    model: `${owner}:${providerName}/${upstreamModel}`,
    apiKey: key.secret,
  },
  async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await gateway.close();
    await stores.close();
  },
);
