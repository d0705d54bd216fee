// One gateway instance in a process of its own, for gateway-instances.test.ts: what a deployment
// runs behind its load balancer. It loads the workspace packages from their built dist/ (plain
// Node resolution, no TypeScript), so run `npm run build` first; the test checks that it was.
//
// Settings come as JSON in SLUICE_TEST_INSTANCE: { databaseUrl, secretKey, organization,
// leaseMs, cacheTtlMs }. At start it migrates, applies the organization under an advisory lock
// (as the example hosts do, so instances starting together do not race), listens on a free
// loopback port and reports { type: "listening", port, createdKeys } over the IPC channel.
// SIGTERM stops it cleanly; the test also SIGKILLs one mid-stream.
//
// The management API trusts an `x-sluice-test-user` header as the logged-in user: test-only.
import { createServer } from "node:http";
import { createOpenAICompatAdapter } from "@sluice/adapter-openai-compat";
import {
  applyOrganizationConfig,
  createEventBus,
  createGateway,
  createManagementNodeHandler,
  createNodeHandler,
  createPriceBook,
  createSecretBox,
} from "@sluice/core";
import { createPostgresStores, withAdvisoryLock } from "@sluice/store-postgres";

const settings = JSON.parse(process.env.SLUICE_TEST_INSTANCE ?? "null");
if (settings === null) throw new Error("SLUICE_TEST_INSTANCE is not set");

const events = createEventBus();
const stores = createPostgresStores({
  connectionString: settings.databaseUrl,
  secretBox: createSecretBox({ key: settings.secretKey }),
  events,
  cache: { ttlMs: settings.cacheTtlMs },
});
await stores.migrate();
const applied = await withAdvisoryLock({ pool: stores.pool, name: "sluice-test:apply-organization-config" }, () =>
  applyOrganizationConfig({ stores, config: settings.organization }),
);

const gateway = createGateway({
  stores,
  adapters: [createOpenAICompatAdapter()],
  prices: createPriceBook({ prices: applied.prices }),
  events,
  reservationLeaseMs: settings.leaseMs,
  identify: ({ headers }) => {
    const userId = headers.get("x-sluice-test-user");
    return userId ? { userId } : null;
  },
});
const api = createNodeHandler(gateway, { basePath: "/v1" });
const management = createManagementNodeHandler(gateway, { basePath: "/api/ai" });
const server = createServer((request, response) => api(request, response, () => management(request, response)));
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));

process.send({ type: "listening", port: server.address().port, createdKeys: applied.createdKeys });

process.once("SIGTERM", () => {
  server.closeAllConnections();
  server.close();
  void gateway
    .close()
    .then(() => stores.close())
    .then(() => process.exit(0));
});
// The test process going away (a crash, a timeout) takes its instances with it.
process.once("disconnect", () => process.exit(1));
