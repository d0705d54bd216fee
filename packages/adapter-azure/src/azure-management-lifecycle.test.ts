/**
 * A managed Azure provider's whole life through the management API: the adapter's `provision`
 * and `deprovision` hooks drive the provisioner against the fake ARM, and the gateway serves the
 * deployment it made from the fake data plane.
 */
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { applyOrganizationConfig, createGateway, createNodeHandler } from "@sluice/core";
import type { Gateway, ProviderRecord } from "@sluice/core";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { createAzureOpenAIAdapter } from "./azure-openai-adapter.js";
import type { AzureProvisioningState } from "./azure-settings.js";
import { resourceGroup, startProvisioningSetup } from "./test-support/provisioning-setup.js";
import type { ProvisioningSetup } from "./test-support/provisioning-setup.js";

const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Running {
  test: ProvisioningSetup;
  gateway: Gateway;
  /** alice's key, on a gateway served on loopback. */
  client: OpenAI;
}

/** The fakes and a gateway whose Azure adapter has a provisioner; alice may create providers. */
async function startLifecycle(armOptions: Parameters<typeof startProvisioningSetup>[0] = {}): Promise<Running> {
  const test = await startProvisioningSetup(armOptions);
  cleanups.push(() => test.close());
  const applied = await applyOrganizationConfig({
    stores: test.stores,
    config: {
      users: [{ id: "alice", roles: ["aiprovider:create"] }, { id: "root", roles: ["org:admin"] }],
      groups: [{ id: "team", name: "Team", members: ["alice"] }],
      allocations: [{ id: "alc_team", name: "Team", owner: { type: "group", groupId: "team" }, limit: 1_000_000_000 }],
      keys: [{ userId: "alice", name: "azure-lifecycle", allocationId: "alc_team" }],
    },
  });
  const adapter = createAzureOpenAIAdapter({ provisioner: test.provisioner() });
  const gateway = createGateway({ stores: test.stores, adapters: [adapter], events: test.events });
  const server: Server = createServer(createNodeHandler(gateway, { basePath: "/v1" }));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await gateway.close();
  });
  const { port } = server.address() as AddressInfo;
  const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: applied.createdKeys[0]!.secret, maxRetries: 0 });
  return { test, gateway, client };
}

function managedSettings(capacity = 10): Record<string, unknown> {
  return { managed: { region: "eastus2", model: "gpt-4o", modelVersion: "2024-08-06", sku: { name: "GlobalStandard", capacity } } };
}

/** Polls the catalog until the provider leaves `unknown` and `provisioning`. */
async function settled(test: ProvisioningSetup, providerId: string): Promise<ProviderRecord> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const record = await test.stores.catalog.get(providerId);
    if (record === null) throw new Error(`The provider ${providerId} is gone.`);
    if (record.status !== "unknown" && record.status !== "provisioning") return record;
    if (Date.now() > deadline) throw new Error(`The provider ${providerId} is still ${record.status}.`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The statuses providers move to, as the catalog announces them. */
function statusChanges(test: ProvisioningSetup): string[] {
  const statuses: string[] = [];
  test.events.on("provider-status-change", ({ provider }) => statuses.push(provider.status));
  return statuses;
}

describe("a managed Azure provider through the management API", () => {
  it("is provisioned after creation, serves chat, and is torn down on delete", async () => {
    const { test, gateway, client } = await startLifecycle();
    const statuses = statusChanges(test);
    const created = await gateway.management.createProvider({ actor: "alice", kind: "azure-openai", name: "gpt4o-east", settings: managedSettings() });

    const ready = await settled(test, created.id);
    expect(ready.status).toBe("provisioned");
    expect(statuses).toEqual(["provisioning", "provisioned"]);
    const state = ready.settings.provisioning as AzureProvisioningState;
    expect(state).toMatchObject({ phase: "ready", accountCreated: true, deploymentName: "gpt-4o" });
    expect(test.arm.account(resourceGroup, state.accountName!)?.deployments.map((deployment) => deployment.name)).toEqual(["gpt-4o"]);

    const completion = await client.chat.completions.create({ model: "alice:gpt4o-east/gpt-4o", messages: [{ role: "user", content: "What does a sluice do?" }] });
    expect(completion.choices[0]?.message.content).toEqual(expect.any(String));

    expect(await gateway.management.deleteProvider({ actor: "alice", providerId: created.id })).toEqual({ id: created.id, deleted: true });
    expect(test.arm.requests.filter((request) => request.method === "DELETE" && /\/deployments\/gpt-4o$/.test(request.path))).toHaveLength(1);
    expect(test.arm.hasAccount(resourceGroup, state.accountName!)).toBe(false);
    expect(await test.stores.catalog.get(created.id)).toBeNull();
  });

  it("lands a quota refusal in failed with Azure's message, and the delete still cleans up", async () => {
    const { test, gateway } = await startLifecycle({ quota: { "eastus2/gpt-4o": 5 } });
    const created = await gateway.management.createProvider({ actor: "root", kind: "azure-openai", name: "big", settings: managedSettings(10) });

    const failed = await settled(test, created.id);
    expect(failed.status).toBe("failed");
    expect(failed.statusReason).toMatch(/^InsufficientQuota: This operation require 10 new capacity in quota Tokens Per Minute \(thousands\) - gpt-4o/);
    const account = (failed.settings.provisioning as AzureProvisioningState).accountName!;
    expect(test.arm.hasAccount(resourceGroup, account)).toBe(true);

    await gateway.management.deleteProvider({ actor: "root", providerId: created.id });
    expect(test.arm.hasAccount(resourceGroup, account)).toBe(false);
    expect(await test.stores.catalog.get(created.id)).toBeNull();
  });

  it("refuses the delete and keeps the record when Azure refuses to delete the deployment", async () => {
    const { test, gateway } = await startLifecycle();
    const created = await gateway.management.createProvider({ actor: "alice", kind: "azure-openai", name: "kept", settings: managedSettings() });
    expect((await settled(test, created.id)).status).toBe("provisioned");

    test.arm.setDeniedActions(["Microsoft.CognitiveServices/accounts/deployments/delete"]);
    await expect(gateway.management.deleteProvider({ actor: "alice", providerId: created.id })).rejects.toMatchObject({ status: 502 });
    const kept = await test.stores.catalog.get(created.id);
    expect(kept?.statusReason).toMatch(/^Deleting the Azure resources failed: AuthorizationFailed/);

    test.arm.setDeniedActions([]);
    await gateway.management.deleteProvider({ actor: "alice", providerId: created.id });
    expect(await test.stores.catalog.get(created.id)).toBeNull();
  });

  it("leaves providers attached by hand alone", async () => {
    const { test, gateway } = await startLifecycle();
    const created = await gateway.management.createProvider({
      actor: "alice",
      kind: "azure-openai",
      name: "by-hand",
      settings: { endpoint: test.dataPlane.url, deployments: [{ name: "gpt-4o", model: "gpt-4o" }] },
      secrets: { apiKey: "azure-key" },
    });
    expect(created.status).toBe("unknown");
    await gateway.management.deleteProvider({ actor: "alice", providerId: created.id });
    expect(test.arm.requests).toEqual([]);
    expect(await test.stores.catalog.get(created.id)).toBeNull();
  });
});
