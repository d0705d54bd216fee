import { createManualClock, GatewayError } from "@sluice/core";
import { describe, expect, it } from "vitest";
import { fieldsRefusedBy, fitBodyToApiVersion } from "./api-version-fields.js";
import { createAzureOpenAIAdapter } from "./azure-openai-adapter.js";
import { assertAzureSettingsUpdate } from "./azure-settings-update.js";
import { createFakeTokenCredential } from "./test-support/fake-token-credential.js";

const adapter = createAzureOpenAIAdapter();

function refusal(run: () => unknown): GatewayError {
  try {
    run();
  } catch (error) {
    expect(GatewayError.is(error)).toBe(true);
    return error as GatewayError;
  }
  throw new Error("expected a GatewayError");
}

describe("validate", () => {
  it("returns the settings with their defaults filled in", () => {
    const settings = adapter.validate!({
      settings: { endpoint: "https://my-resource.openai.azure.com/", deployments: [{ name: "gpt-4o", model: "gpt-4o" }] },
      secrets: { apiKey: "k" },
    });
    expect(settings).toEqual({
      endpoint: "https://my-resource.openai.azure.com/",
      apiShape: "deployments",
      auth: "api-key",
      deployments: [{ name: "gpt-4o", model: "gpt-4o" }],
    });
  });

  it("normalizes a managed provider's region and fills the SKU", () => {
    const settings = adapter.validate!({ settings: { managed: { region: "East US 2", model: "gpt-4o" } }, secrets: {} });
    expect(settings.managed).toEqual({ region: "eastus2", model: "gpt-4o", modelFormat: "OpenAI", sku: { name: "GlobalStandard", capacity: 10 } });
  });

  for (const [what, settings, param] of [
    ["an endpoint that is not a URL", { endpoint: "my-resource" }, "settings.endpoint"],
    ["an endpoint with a query", { endpoint: "https://x.openai.azure.com/?api-version=2024-10-21" }, "settings.endpoint"],
    ["a deployment without any endpoint", { deployments: [{ name: "gpt-4o", model: "gpt-4o" }] }, "settings.deployments[0].endpoint"],
    [
      "a deployment listed twice for one endpoint",
      { endpoint: "https://x.openai.azure.com", deployments: [{ name: "a", model: "m" }, { name: "a", model: "m", endpoint: "https://x.openai.azure.com/" }] },
      "settings.deployments[1].name",
    ],
    ["a v1 api-version with the deployments shape", { endpoint: "https://x.openai.azure.com", apiVersion: "v1" }, "settings.apiVersion"],
    ["an unknown key", { endpoint: "https://x.openai.azure.com", region: "eastus" }, "settings.region"],
    ["a managed provider without a model", { managed: { region: "eastus2" } }, "settings.managed.model"],
  ] as const) {
    it(`refuses ${what} with a 400 naming ${param}`, () => {
      const error = refusal(() => adapter.validate!({ settings, secrets: {} }));
      expect(error.status).toBe(400);
      expect(error.param).toBe(param);
    });
  }

  it("refuses Entra auth when the adapter has no credential, and accepts it when it has one", () => {
    const settings = { endpoint: "https://x.openai.azure.com", auth: "entra" };
    expect(refusal(() => adapter.validate!({ settings, secrets: {} })).param).toBe("settings.auth");
    const credential = createFakeTokenCredential({ clock: createManualClock(), lifetimeMs: 1 });
    expect(createAzureOpenAIAdapter({ credential }).validate!({ settings, secrets: {} }).auth).toBe("entra");
  });

  it("refuses deleting the key an api-key provider needs", () => {
    const settings = { endpoint: "https://x.openai.azure.com", deployments: [{ name: "a", model: "m", apiKeySecret: "eastKey" }] };
    expect(refusal(() => adapter.validate!({ settings, secrets: { eastKey: null } })).param).toBe("secrets.eastKey");
  });
});

describe("assertAzureSettingsUpdate", () => {
  const managed = { managed: { region: "eastus2", model: "gpt-4o", sku: { name: "GlobalStandard", capacity: 10 } } };

  it("refuses changing a managed provider's region or model", () => {
    for (const [field, value] of [
      ["region", "swedencentral"],
      ["model", "gpt-4o-mini"],
    ] as const) {
      const next = { managed: { ...managed.managed, [field]: value } };
      const error = refusal(() => assertAzureSettingsUpdate({ previous: managed, next }));
      expect(error.param).toBe(`settings.managed.${field}`);
    }
  });

  it("allows changing the capacity", () => {
    expect(() =>
      assertAzureSettingsUpdate({ previous: managed, next: { managed: { ...managed.managed, sku: { name: "GlobalStandard", capacity: 20 } } } }),
    ).not.toThrow();
  });

  it("refuses dropping the managed block or touching the provisioning state", () => {
    expect(refusal(() => assertAzureSettingsUpdate({ previous: managed, next: { endpoint: "https://x.openai.azure.com" } })).param).toBe(
      "settings.managed",
    );
    const provisioning = {
      phase: "ready",
      subscriptionId: "s",
      resourceGroup: "rg",
      region: "eastus2",
      accountName: "a",
      accountCreated: true,
      deploymentName: "gpt-4o",
      operation: null,
      startedAt: 1,
      updatedAt: 2,
      error: null,
    };
    const error = refusal(() => assertAzureSettingsUpdate({ previous: { ...managed, provisioning }, next: managed }));
    expect(error.param).toBe("settings.provisioning");
  });
});

describe("the api-version field table", () => {
  it("names what each dated version refuses", () => {
    expect(fieldsRefusedBy("2024-06-01")).toEqual(["stream_options", "max_completion_tokens", "parallel_tool_calls"]);
    expect(fieldsRefusedBy("2024-08-01-preview")).toEqual(["stream_options", "max_completion_tokens"]);
    expect(fieldsRefusedBy("2024-10-21")).toEqual(["parallel_tool_calls"]);
    expect(fieldsRefusedBy("2025-04-01-preview")).toEqual([]);
    expect(fieldsRefusedBy("v1")).toEqual([]);
  });

  it("leaves a body alone when nothing is refused, and never overwrites a max_tokens the client set", () => {
    const body = { model: "m", stream_options: { include_usage: true } };
    expect(fitBodyToApiVersion(body, "2024-10-21")).toBe(body);
    expect(fitBodyToApiVersion({ model: "m", max_tokens: 5, max_completion_tokens: 9 }, "2024-06-01")).toEqual({ model: "m", max_tokens: 5 });
  });
});
