/**
 * The gateway under load, in a process of its own: createGateway + the node:http handler +
 * adapter-openai-compat, on the memory store or the PostgreSQL store (BENCH_GATEWAY's `store`),
 * every feature on as in the root benchmark's Sluice path. The caller holds a key with its own
 * cap, drawing on a group allocation with a monthly period; the provider is another user's,
 * shared through a group grant; the model has a price. So each request verifies a key, checks a
 * permission, reserves a worst case against the allocation and the key, and commits its cost.
 *
 * Reports { type: "listening", port, apiKey, model } over IPC; answers "cpu" with its CPU time
 * (µs) and "stop" by closing.
 */
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createOpenAICompatAdapter } from "@sluice/adapter-openai-compat";
import { applyOrganizationConfig, createEventBus, createGateway, createNodeHandler, createPriceBook, createSecretBox } from "@sluice/core";
import type { OrganizationConfig, SluiceStores } from "@sluice/core";
import { createMemoryStores } from "@sluice/store-memory";
import { createPostgresStores } from "@sluice/store-postgres";

export interface GatewayServerSettings {
  store: "memory" | "postgres";
  upstreamUrl: string;
  /** For the postgres store: a migrated schema of its own. */
  databaseUrl?: string;
}

export type GatewayServerMessage =
  | { type: "listening"; port: number; apiKey: string; model: string }
  | { type: "cpu"; micros: number };

const settings = JSON.parse(process.env.BENCH_GATEWAY ?? "null") as GatewayServerSettings | null;
if (settings === null) throw new Error("BENCH_GATEWAY is not set");

/** $1e9 in micro-dollars: never refuses, and keeps every sum far below 2^53. */
const neverRefuses = 1_000_000_000_000_000;
const organization: OrganizationConfig = {
  users: [{ id: "olivia" }, { id: "bench-user" }],
  groups: [{ id: "bench", name: "Benchmark", members: ["bench-user"] }],
  allocations: [{ id: "alc_bench", name: "Benchmark", owner: { type: "group", groupId: "bench" }, limit: neverRefuses, period: "month" }],
  providers: [
    {
      owner: "olivia",
      name: "upstream",
      kind: "openai-compatible",
      settings: { endpoint: `${settings.upstreamUrl}/v1/chat/completions`, models: ["bench-model"] },
      grants: [{ type: "group", groupId: "bench" }],
    },
  ],
  // Per million tokens: $2.50 in, $10 out.
  prices: [{ provider: "olivia:upstream", model: "bench-model", input: 2_500_000, output: 10_000_000 }],
  keys: [{ userId: "bench-user", name: "bench", allocationId: "alc_bench", limit: neverRefuses / 10 }],
};

const events = createEventBus();
const secretBox = createSecretBox({ key: randomBytes(32) });
let stores: SluiceStores;
if (settings.store === "postgres") {
  const postgres = createPostgresStores({ connectionString: settings.databaseUrl, secretBox, events });
  await postgres.migrate();
  stores = postgres;
} else {
  stores = createMemoryStores({ secretBox, events });
}
const applied = await applyOrganizationConfig({ stores, config: organization });
const gateway = createGateway({
  stores,
  adapters: [createOpenAICompatAdapter()],
  prices: createPriceBook({ prices: applied.prices }),
  events,
});
const server = createServer({ keepAlive: true, noDelay: true }, createNodeHandler(gateway, { basePath: "/v1" }));
server.keepAliveTimeout = 60_000;
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));

const send = (message: GatewayServerMessage) => process.send?.(message);
send({
  type: "listening",
  port: (server.address() as AddressInfo).port,
  apiKey: applied.createdKeys[0]!.secret,
  model: "olivia:upstream/bench-model",
});
process.on("message", (message: { type: string }) => {
  if (message.type === "cpu") {
    const usage = process.cpuUsage();
    send({ type: "cpu", micros: usage.user + usage.system });
  } else if (message.type === "stop") {
    server.closeAllConnections();
    server.close();
    void gateway
      .close()
      .then(() => stores.close())
      .then(() => process.exit(0));
  }
});
process.once("disconnect", () => process.exit(1));
