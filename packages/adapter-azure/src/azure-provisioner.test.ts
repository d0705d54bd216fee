import { GatewayError } from "@sluice/core";
import type { ProviderRecord } from "@sluice/core";
import { afterEach, describe, expect, it } from "vitest";
import type { AzureProvisioningState } from "./azure-settings.js";
import { discoverAzureDeployments } from "./discover-azure-deployments.js";
import { armOrigin } from "./test-support/fake-azure-arm.js";
import { createLoopbackHttpClient } from "./test-support/loopback-http-client.js";
import { resourceGroup, startProvisioningSetup, subscriptionId } from "./test-support/provisioning-setup.js";
import type { ProvisioningSetup } from "./test-support/provisioning-setup.js";
import { chatCall } from "./test-support/azure-test-setup.js";

let setup: ProvisioningSetup | undefined;

afterEach(async () => {
  await setup?.close();
  setup = undefined;
});

async function start(armOptions: Parameters<typeof startProvisioningSetup>[0] = {}): Promise<ProvisioningSetup> {
  setup = await startProvisioningSetup(armOptions);
  return setup;
}

function provisioningOf(record: ProviderRecord): AzureProvisioningState {
  return record.settings.provisioning as AzureProvisioningState;
}

function armCalls(test: ProvisioningSetup, method: string, pattern: RegExp): number {
  return test.arm.requests.filter((request) => request.method === method && pattern.test(request.path)).length;
}

const accountPath = /\/accounts\/[^/]+$/;
const deploymentPath = /\/deployments\/[^/]+$/;

describe("provisioning a managed provider", () => {
  it("goes create -> provisioning -> provisioned -> chat -> delete", async () => {
    const test = await start();
    const statuses: string[] = [];
    const phases: string[] = [];
    test.events.on("provider-status-change", ({ provider }) => statuses.push(provider.status));
    test.events.on("provider-update", (record) => {
      const phase = (record.settings.provisioning as AzureProvisioningState | undefined)?.phase;
      if (phase !== undefined && phases.at(-1) !== phase) phases.push(phase);
    });
    const created = await test.createManaged({ name: "gpt4o-east" });
    expect(created.status).toBe("provisioning");

    const provisioner = test.provisioner();
    const ready = await provisioner.provision(created);
    expect(ready.status).toBe("provisioned");
    expect(ready.statusReason).toBeNull();
    expect(statuses).toEqual(["provisioned"]);
    expect(phases).toEqual(["pending", "account", "deployment", "ready"]);

    const state = provisioningOf(ready);
    expect(state).toMatchObject({ phase: "ready", subscriptionId, resourceGroup, region: "eastus2", accountCreated: true, deploymentName: "gpt-4o", operation: null, error: null });
    expect(state.accountName).toMatch(/^sluice-eastus2-[a-z0-9]{6}$/);
    expect(ready.settings).toMatchObject({
      endpoint: test.dataPlane.url,
      apiShape: "deployments",
      auth: "api-key",
      deployments: [{ name: "gpt-4o", model: "gpt-4o" }],
    });
    expect(ready.secretNames).toEqual(["apiKey"]);
    const secrets = await test.stores.catalog.readSecrets(ready.id);
    expect(secrets.apiKey).toBe(test.arm.account(resourceGroup, state.accountName!)?.keys.key1);

    // What ARM saw: the account (kind OpenAI, its own subdomain, Sluice's tags), the deployment,
    // polls of its operation, all signed with the management credential.
    const accountPut = test.arm.requests.find((request) => request.method === "PUT" && accountPath.test(request.path));
    expect(accountPut?.body).toMatchObject({
      kind: "OpenAI",
      location: "eastus2",
      sku: { name: "S0" },
      properties: { customSubDomainName: state.accountName },
      tags: { "managed-by": "sluice", "sluice-provider": ready.id },
    });
    const deploymentPut = test.arm.requests.find((request) => request.method === "PUT" && deploymentPath.test(request.path));
    expect(deploymentPut?.body).toMatchObject({
      sku: { name: "GlobalStandard", capacity: 10 },
      properties: { model: { format: "OpenAI", name: "gpt-4o", version: "2024-08-06" } },
    });
    expect(test.arm.operationPolls()).toBe(3);
    expect(test.arm.requests.every((request) => request.authorization?.startsWith("Bearer arm-token-") && request.apiVersion !== null)).toBe(true);
    expect(test.armCredential.calls[0]?.scopes).toEqual(["https://management.azure.com/.default"]);

    // Chat through the provider the record now describes.
    const provider = test.adapter.create({ record: ready, secrets });
    const response = await provider.deployments("gpt-4o")[0]!.chatCompletion(chatCall());
    expect(response.status).toBe(200);
    expect(response.body.model).toBe("gpt-4o-2024-08-06");
    await provider.close?.();

    expect(await provisioner.deprovision(ready.id)).toBe(true);
    expect(armCalls(test, "DELETE", deploymentPath)).toBe(1);
    expect(armCalls(test, "DELETE", accountPath)).toBe(1);
    expect(test.arm.hasAccount(resourceGroup, state.accountName!)).toBe(false);
    expect(await test.stores.catalog.get(ready.id)).toBeNull();
    // Idempotent.
    expect(await provisioner.deprovision(ready.id)).toBe(false);
  });

  it("uses the region's existing account, and keeps it on delete when Sluice did not create it", async () => {
    const test = await start();
    test.arm.seedAccount({ name: "contoso-aoai-westus", resourceGroup, location: "westus" });
    test.arm.seedAccount({ name: "contoso-aoai-east", resourceGroup, location: "East US 2" });
    test.arm.seedAccount({ name: "contoso-speech-east", resourceGroup, location: "eastus2", kind: "SpeechServices" });
    const provisioner = test.provisioner();
    const ready = await provisioner.provision(await test.createManaged({ name: "east" }));
    expect(provisioningOf(ready)).toMatchObject({ accountName: "contoso-aoai-east", accountCreated: false });
    expect(armCalls(test, "PUT", accountPath)).toBe(0);
    await provisioner.deprovision(ready.id);
    expect(test.arm.hasAccount(resourceGroup, "contoso-aoai-east")).toBe(true);
    expect(test.arm.account(resourceGroup, "contoso-aoai-east")?.deployments).toEqual([]);
  });

  it("gathers a region's providers in one account, and deletes it with the last of them", async () => {
    const test = await start();
    const provisioner = test.provisioner();
    const [first, second] = await Promise.all([
      provisioner.provision(await test.createManaged({ name: "one" })),
      provisioner.provision(await test.createManaged({ name: "two", owner: "bob" })),
    ]);
    expect(first!.status).toBe("provisioned");
    expect(second!.status).toBe("provisioned");
    const account = provisioningOf(first!).accountName!;
    expect(provisioningOf(second!).accountName).toBe(account);
    expect(armCalls(test, "PUT", accountPath)).toBe(1);
    // The model's name is taken in the shared account: the second provider's deployment is gpt-4o-2.
    expect(new Set([provisioningOf(first!).deploymentName, provisioningOf(second!).deploymentName])).toEqual(new Set(["gpt-4o", "gpt-4o-2"]));

    await provisioner.deprovision(first!.id);
    expect(test.arm.hasAccount(resourceGroup, account)).toBe(true);
    await provisioner.deprovision(second!.id);
    expect(test.arm.hasAccount(resourceGroup, account)).toBe(false);
  });
});

describe("Azure's refusals land in failed, with Azure's message", () => {
  it("fails on quota, keeping the account it created for the retry and removing it on delete", async () => {
    const test = await start({ quota: { "eastus2/gpt-4o": 5 } });
    const provisioner = test.provisioner();
    const failed = await provisioner.provision(await test.createManaged({ name: "big", capacity: 10 }));
    expect(failed.status).toBe("failed");
    expect(failed.statusReason).toMatch(/^InsufficientQuota: This operation require 10 new capacity in quota Tokens Per Minute \(thousands\) - gpt-4o/);
    expect(provisioningOf(failed)).toMatchObject({ phase: "failed", error: { code: "InsufficientQuota" }, accountCreated: true });
    const account = provisioningOf(failed).accountName!;
    expect(test.arm.hasAccount(resourceGroup, account)).toBe(true);
    expect(await provisioner.deprovision(failed.id)).toBe(true);
    expect(test.arm.hasAccount(resourceGroup, account)).toBe(false);
  });

  it("fails on a model the region does not offer", async () => {
    const test = await start({ unsupportedModels: ["eastus2/gpt-4o-ultra"] });
    const failed = await test.provisioner().provision(await test.createManaged({ name: "ultra", model: "gpt-4o-ultra" }));
    expect(failed.status).toBe("failed");
    expect(failed.statusReason).toMatch(/^DeploymentModelNotSupported: The model 'Format:OpenAI,Name:gpt-4o-ultra,Version:2024-08-06' of account deployment is not supported in this region 'eastus2'/);
  });

  it("fails on missing permissions, and a retry once they are granted finishes in the same account", async () => {
    const test = await start({ deniedActions: ["Microsoft.CognitiveServices/accounts/deployments/write"] });
    const provisioner = test.provisioner();
    const record = await test.createManaged({ name: "denied" });
    const failed = await provisioner.provision(record);
    expect(failed.status).toBe("failed");
    expect(failed.statusReason).toMatch(/^AuthorizationFailed: The client '[^']+' with object id '[^']+' does not have authorization to perform action 'Microsoft.CognitiveServices\/accounts\/deployments\/write'/);
    test.arm.setDeniedActions([]);
    const ready = await provisioner.provision(record.id);
    expect(ready.status).toBe("provisioned");
    expect(provisioningOf(ready).accountName).toBe(provisioningOf(failed).accountName);
    expect(armCalls(test, "PUT", accountPath)).toBe(1);
  });

  it("fails when Azure's long-running operation ends Failed", async () => {
    const test = await start({ failDeploymentOperations: { code: "ServiceUnavailable", message: "The service is temporarily unable to create the deployment." } });
    const failed = await test.provisioner().provision(await test.createManaged({ name: "flaky" }));
    expect(failed.status).toBe("failed");
    expect(failed.statusReason).toBe("ServiceUnavailable: The service is temporarily unable to create the deployment.");
  });
});

describe("a restart half-way", () => {
  it("resumes polling the same operation after the first provisioner was dropped mid-poll", async () => {
    const test = await start({ pollsUntilDone: 8 });
    const record = await test.createManaged({ name: "restart" });
    const first = test.provisioner({ pollIntervalMs: 25 });
    const abandoned = first.provision(record.id);
    await test.arm.waitForOperationPolls(2);
    await first.close();
    await expect(abandoned).rejects.toMatchObject({ status: 503 });

    const halfway = (await test.stores.catalog.get(record.id))!;
    expect(halfway.status).toBe("provisioning");
    expect(provisioningOf(halfway)).toMatchObject({ phase: "deployment", operation: { kind: "deployment-create" } });
    expect(provisioningOf(halfway).operation!.polls).toBeGreaterThanOrEqual(1);
    // The dropped provisioner writes nothing more.
    const version = halfway.version;
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect((await test.stores.catalog.get(record.id))!.version).toBe(version);

    const second = test.provisioner();
    const summary = await second.resumeAll();
    expect(summary).toEqual({ provisioned: [record.id], failed: [], deleted: [], errors: [] });
    const ready = (await test.stores.catalog.get(record.id))!;
    expect(ready.status).toBe("provisioned");
    // The same account and the same deployment operation: nothing was created twice.
    expect(armCalls(test, "PUT", accountPath)).toBe(1);
    expect(armCalls(test, "PUT", deploymentPath)).toBe(1);
    expect(test.arm.operationPolls()).toBe(8);
  });

  it("starts a provisioning that had recorded nothing yet, and finishes a deletion that was refused", async () => {
    const test = await start();
    const fresh = await test.createManaged({ name: "fresh" });
    const provisioner = test.provisioner();
    const ready = await provisioner.provision(await test.createManaged({ name: "doomed" }));
    test.arm.setDeniedActions(["Microsoft.CognitiveServices/accounts/deployments/delete"]);
    const refused = await provisioner.deprovision(ready.id).then(
      () => null,
      (error: unknown) => error,
    );
    expect(GatewayError.is(refused) && refused.status).toBe(502);
    const deleting = (await test.stores.catalog.get(ready.id))!;
    expect(provisioningOf(deleting)).toMatchObject({ phase: "deleting", error: { code: "AuthorizationFailed" } });
    expect(deleting.statusReason).toMatch(/^Deleting the Azure resources failed: AuthorizationFailed/);

    test.arm.setDeniedActions([]);
    const summary = await test.provisioner().resumeAll();
    expect(summary.provisioned).toEqual([fresh.id]);
    expect(summary.deleted).toEqual([ready.id]);
    expect(await test.stores.catalog.get(ready.id)).toBeNull();
  });

  it("refuses new work once closed", async () => {
    const test = await start();
    const provisioner = test.provisioner();
    await provisioner.close();
    await expect(provisioner.provision(await test.createManaged({ name: "late" }))).rejects.toMatchObject({ status: 503 });
  });
});

describe("attaching an existing resource", () => {
  const seeded = {
    name: "contoso-prod",
    resourceGroup: "rg-contoso",
    location: "swedencentral",
    deployments: [
      { name: "chat", model: "gpt-4o", version: "2024-11-20", format: "OpenAI", skuName: "GlobalStandard", capacity: 50 },
      { name: "embed", model: "text-embedding-3-large", version: "1", format: "OpenAI", skuName: "Standard", capacity: 20 },
      { name: "new", model: "gpt-4.1", version: "2025-04-14", format: "OpenAI", skuName: "GlobalStandard", capacity: 5, provisioningState: "Creating" },
    ],
  };
  const resourceId = `/subscriptions/${subscriptionId}/resourceGroups/rg-contoso/providers/Microsoft.CognitiveServices/accounts/contoso-prod`;

  it("discovers its deployments through ARM", async () => {
    const test = await start();
    test.arm.seedAccount(seeded);
    const found = await discoverAzureDeployments({
      credential: test.armCredential,
      resourceId,
      managementClientOptions: { httpClient: createLoopbackHttpClient({ [armOrigin]: test.arm.url }) },
    });
    expect(found.endpoint).toBe(`${test.dataPlane.url}/`);
    expect(found.deployments.map((deployment) => [deployment.name, deployment.model, deployment.provisioningState])).toEqual([
      ["chat", "gpt-4o", "Succeeded"],
      ["embed", "text-embedding-3-large", "Succeeded"],
      ["new", "gpt-4.1", "Creating"],
    ]);
  });

  it("fills endpoint, ready deployments and the key from the resource id, and leaves the account alone on delete", async () => {
    const test = await start();
    test.arm.seedAccount(seeded);
    const settings = test.adapter.validate!({ settings: { resourceId, auth: "api-key" }, secrets: {} });
    const record = await test.stores.catalog.create({ kind: "azure-openai", owner: "alice", name: "contoso", status: "provisioning", settings });
    const provisioner = test.provisioner();
    const ready = await provisioner.provision(record);
    expect(ready.status).toBe("provisioned");
    expect(ready.settings).toMatchObject({
      endpoint: test.dataPlane.url,
      deployments: [
        { name: "chat", model: "gpt-4o" },
        { name: "embed", model: "text-embedding-3-large" },
      ],
    });
    expect((await test.stores.catalog.readSecrets(ready.id)).apiKey).toBe(test.arm.account("rg-contoso", "contoso-prod")?.keys.key1);
    expect(await provisioner.deprovision(ready.id)).toBe(true);
    expect(test.arm.account("rg-contoso", "contoso-prod")?.deployments).toHaveLength(3);
    expect(test.arm.requests.filter((request) => request.method === "DELETE")).toEqual([]);
  });

  it("fails with ARM's message when the account does not exist", async () => {
    const test = await start();
    const settings = test.adapter.validate!({ settings: { resourceId }, secrets: {} });
    const record = await test.stores.catalog.create({ kind: "azure-openai", owner: "alice", name: "missing", status: "provisioning", settings });
    const failed = await test.provisioner().provision(record);
    expect(failed.status).toBe("failed");
    expect(failed.statusReason).toMatch(/^ResourceNotFound: The Resource 'Microsoft.CognitiveServices\/accounts\/contoso-prod' under resource group 'rg-contoso' was not found/);
  });
});
