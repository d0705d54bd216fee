/**
 * A fake ARM, a fake data plane its accounts point at, a real catalog (the in-memory store), and
 * provisioners wired to them through the loopback HTTP client. Not exported from the package.
 */
import { randomBytes } from "node:crypto";
import { createEventBus, createSecretBox, systemClock } from "@sluice/core";
import type { ProviderRecord, SluiceEventBus, SluiceStores } from "@sluice/core";
import { createMemoryStores } from "@sluice/store-memory";
import { createAzureOpenAIAdapter } from "../azure-openai-adapter.js";
import { createAzureProvisioner } from "../azure-provisioner.js";
import type { AzureProvisioner, AzureProvisionerOptions } from "../azure-provisioner.js";
import { armOrigin, startFakeAzureArm } from "./fake-azure-arm.js";
import type { FakeArm, FakeArmOptions } from "./fake-azure-arm.js";
import { startFakeAzureOpenAI } from "./fake-azure-openai.js";
import type { FakeAzureOpenAI } from "./fake-azure-openai.js";
import { createFakeTokenCredential } from "./fake-token-credential.js";
import type { FakeTokenCredential } from "./fake-token-credential.js";
import { createLoopbackHttpClient } from "./loopback-http-client.js";

export const subscriptionId = "8f0a7c7e-4b0c-4e63-9d57-0d3f2c9b1a11";
export const resourceGroup = "rg-sluice";

export interface ProvisioningSetup {
  arm: FakeArm;
  dataPlane: FakeAzureOpenAI;
  stores: SluiceStores;
  events: SluiceEventBus;
  armCredential: FakeTokenCredential;
  adapter: ReturnType<typeof createAzureOpenAIAdapter>;
  /** A new provisioner on the same catalog and fakes: one per gateway "process". */
  provisioner(overrides?: Partial<AzureProvisionerOptions>): AzureProvisioner;
  /** Creates a managed provider record the way a host would: validated, status `provisioning`. */
  createManaged(input: { name: string; region?: string; model?: string; capacity?: number; deploymentName?: string; owner?: string }): Promise<ProviderRecord>;
  close(): Promise<void>;
}

export async function startProvisioningSetup(armOptions: Partial<FakeArmOptions> = {}): Promise<ProvisioningSetup> {
  const dataPlane = await startFakeAzureOpenAI({ deployments: [] });
  const arm = await startFakeAzureArm({
    subscriptionId,
    pollsUntilDone: 3,
    dataPlaneEndpoint: () => `${dataPlane.url}/`,
    onDeploymentSucceeded: ({ deployment, keys }) => {
      dataPlane.addDeployment({ name: deployment.name, model: `${deployment.model}-${deployment.version}` });
      dataPlane.acceptApiKey(keys.key1);
    },
    ...armOptions,
  });
  const armCredential = createFakeTokenCredential({ clock: systemClock, lifetimeMs: 3_600_000, prefix: "arm" });
  const events = createEventBus();
  const stores = createMemoryStores({ secretBox: createSecretBox({ key: randomBytes(32) }), events });
  const adapter = createAzureOpenAIAdapter();
  const provisioners: AzureProvisioner[] = [];
  return {
    arm,
    dataPlane,
    stores,
    events,
    armCredential,
    adapter,
    provisioner(overrides = {}) {
      const provisioner = createAzureProvisioner({
        catalog: stores.catalog,
        credential: armCredential,
        subscriptionId,
        resourceGroup,
        // The SDK keeps its real https://management.azure.com URLs; only the socket goes to loopback.
        managementClientOptions: { httpClient: createLoopbackHttpClient({ [armOrigin]: arm.url }) },
        pollIntervalMs: 10,
        ...overrides,
      });
      provisioners.push(provisioner);
      return provisioner;
    },
    async createManaged(input) {
      const settings = adapter.validate!({
        settings: {
          managed: {
            region: input.region ?? "eastus2",
            model: input.model ?? "gpt-4o",
            modelVersion: "2024-08-06",
            sku: { name: "GlobalStandard", capacity: input.capacity ?? 10 },
            ...(input.deploymentName === undefined ? {} : { deploymentName: input.deploymentName }),
          },
        },
        secrets: {},
      });
      return stores.catalog.create({ kind: "azure-openai", owner: input.owner ?? "alice", name: input.name, status: "provisioning", settings });
    },
    async close() {
      await Promise.all(provisioners.map((provisioner) => provisioner.close()));
      await arm.close();
      await dataPlane.close();
    },
  };
}
