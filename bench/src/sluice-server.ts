/**
 * Path 3: the real gateway on a node:http server, every feature on: auth, permission, budget and
 * metering (`benchOrganization` says how each is exercised).
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { randomBytes } from "node:crypto";
import { createOpenAICompatAdapter } from "@sluice/adapter-openai-compat";
import { applyOrganizationConfig, createEventBus, createGateway, createNodeHandler, createPriceBook, createSecretBox } from "@sluice/core";
import { createMemoryStores } from "@sluice/store-memory";
import { serveControl } from "./server-control.js";
import { benchModelId, benchOrganization } from "./bench-organization.js";
import { keepAliveTimeoutMs, serverOptions, upstreamConnections, upstreamFromEnvironment } from "./workload.js";

const upstream = upstreamFromEnvironment();
const basePath = "/v1";
const organization = benchOrganization(upstream);

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
    model: benchModelId,
    apiKey: key.secret,
  },
  async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await gateway.close();
    await stores.close();
  },
);
