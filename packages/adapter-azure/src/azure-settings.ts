import { GatewayError, parseInput } from "@sluice/core";
import { z } from "zod";
import { parseAzureEndpoint } from "./azure-endpoint.js";

/** The latest dated GA api-version (wire-formats §3.1): the default for the deployments URL shape. */
export const defaultAzureApiVersion = "2024-10-21";

/** Token scope of the Azure OpenAI data plane for Entra ID (wire-formats §3.2). */
export const azureOpenAIScope = "https://cognitiveservices.azure.com/.default";

export const azureApiShapes = ["deployments", "v1"] as const;
export type AzureApiShape = (typeof azureApiShapes)[number];

export const azureAuthModes = ["api-key", "entra"] as const;
export type AzureAuthMode = (typeof azureAuthModes)[number];

const endpointSchema = z
  .string({ error: "must be a string" })
  .max(2_048, { error: "must be at most 2048 characters" })
  .superRefine((value, context) => {
    const parsed = parseAzureEndpoint(value);
    if (typeof parsed === "string") context.addIssue({ code: "custom", message: parsed });
  });

/** Azure deployment names: 2-64 letters, digits, `-`, `_` and `.` (the portal's rule), 1 allowed here. */
export const azureDeploymentNameSchema = z
  .string({ error: "must be a string" })
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, { error: "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit" });

const secretNameSchema = z.string({ error: "must be a string" }).min(1).max(64);

/** `2024-10-21`, `2025-04-01-preview`, or for the v1 shape `v1` / `preview`. */
const apiVersionSchema = z
  .string({ error: "must be a string" })
  .regex(/^(?:\d{4}-\d{2}-\d{2}(?:-preview)?|v1|preview|latest)$/, {
    error: "must be a dated api-version such as 2024-10-21 or 2025-04-01-preview, or v1 / preview for the v1 API",
  });

/** An Azure region as ARM names it: `eastus2`. "East US 2" is accepted and normalized. */
export const azureRegionSchema = z
  .string({ error: "must be a string" })
  .regex(/^[A-Za-z0-9 ]{2,64}$/, { error: "must be an Azure region name such as eastus2" })
  .transform((region) => region.replaceAll(" ", "").toLowerCase());

const accountNameSchema = z
  .string({ error: "must be a string" })
  .regex(/^[A-Za-z0-9][A-Za-z0-9-]{1,62}$/, { error: "must be 2-63 letters, digits or '-', starting with a letter or digit" });

const resourceGroupSchema = z
  .string({ error: "must be a string" })
  .regex(/^[-\w._()]{1,90}$/, { error: "must be a resource group name (1-90 letters, digits, '-', '_', '.', '(' or ')')" });

const subscriptionIdSchema = z
  .string({ error: "must be a string" })
  .regex(/^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$/, { error: "must be a subscription id (a GUID)" });

/** `/subscriptions/{id}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/{name}` */
export const accountResourceIdPattern =
  /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.CognitiveServices\/accounts\/([^/]+)$/i;

const resourceIdSchema = z
  .string({ error: "must be a string" })
  .regex(accountResourceIdPattern, {
    error: "must be an account resource id: /subscriptions/{id}/resourceGroups/{group}/providers/Microsoft.CognitiveServices/accounts/{name}",
  });

/**
 * One Azure deployment the provider serves, known to clients by `name` (the last segment of
 * `owner:provider-name/deployment`).
 *
 * Several entries may serve one model: the same `name` at another `endpoint` (the deployment
 * repeated in another region or account), or another name with the same `model`. A request for a
 * name tries that name's entries in settings order, then every other entry with the same `model`
 * (unless it says `fallback: false`), so a 429 or an outage in one region falls back to the next.
 */
export const azureDeploymentSchema = z.strictObject({
  name: azureDeploymentNameSchema,
  /** The model the deployment runs (`gpt-4o`): entries sharing it fall back to one another. */
  model: z.string({ error: "must be a string" }).min(1, { error: "must not be empty" }).max(256),
  /** The resource serving this deployment, when it is not the provider's `endpoint`. */
  endpoint: endpointSchema.optional(),
  /** The secret holding this endpoint's key with `auth: "api-key"`. Default `apiKey`. */
  apiKeySecret: secretNameSchema.optional(),
  /** False keeps this entry out of other deployments' fallbacks. Default true. */
  fallback: z.boolean({ error: "must be a boolean" }).optional(),
});
export type AzureDeploymentSettings = z.output<typeof azureDeploymentSchema>;

/**
 * What Sluice provisions for a managed provider (SPEC.md "Azure OpenAI (managed)"). Region and
 * model are fixed at creation: see `assertAzureSettingsUpdate`.
 */
export const azureManagedSchema = z.strictObject({
  /** The region to deploy in (`eastus2`). */
  region: azureRegionSchema,
  /** The model to deploy (`gpt-4o`). */
  model: z.string({ error: "must be a string" }).min(1).max(256),
  /** The model version (`2024-08-06`); Azure's default version for the model when absent. */
  modelVersion: z.string({ error: "must be a string" }).min(1).max(64).optional(),
  /** The model's format. Default `OpenAI`. */
  modelFormat: z.string({ error: "must be a string" }).min(1).max(64).default("OpenAI"),
  /** Deployment SKU and capacity (thousands of tokens per minute for the Standard types). */
  sku: z
    .strictObject({
      name: z.string({ error: "must be a string" }).min(1).max(64).default("GlobalStandard"),
      capacity: z.number({ error: "must be an integer" }).int({ error: "must be an integer" }).min(1).max(100_000).default(10),
    })
    .default({ name: "GlobalStandard", capacity: 10 }),
  /** The deployment's name, what clients put after the `/`. Default: the model. */
  deploymentName: azureDeploymentNameSchema.optional(),
  /** Defaults to the provisioner's subscription. */
  subscriptionId: subscriptionIdSchema.optional(),
  /** Defaults to the provisioner's resource group. */
  resourceGroup: resourceGroupSchema.optional(),
  /** Deploy into this account (created when missing) instead of finding one for the region. */
  accountName: accountNameSchema.optional(),
  /** Tags for the Azure resources Sluice creates (a billing group's cost center, say). */
  resourceTags: z.record(z.string().min(1).max(512), z.string().max(256)).optional(),
});
export type AzureManagedSettings = z.output<typeof azureManagedSchema>;

export const provisioningPhases = ["pending", "account", "deployment", "ready", "failed", "deleting"] as const;
export type ProvisioningPhase = (typeof provisioningPhases)[number];

/**
 * The provisioner's progress, kept in the provider record so that a restarted gateway can resume
 * it (`resumeAll`). Written only by the provisioner; hosts carry it over unchanged on updates.
 */
export const azureProvisioningStateSchema = z.strictObject({
  phase: z.enum(provisioningPhases),
  subscriptionId: z.string().min(1),
  resourceGroup: z.string().min(1),
  region: z.string().min(1),
  /** The account deployed into, once chosen. */
  accountName: z.string().min(1).nullable(),
  /** True when Sluice created the account, so deleting the provider may delete it too. */
  accountCreated: z.boolean(),
  deploymentName: z.string().min(1).nullable(),
  /**
   * The long-running operation in flight: the SDK's serialized poller (`resumeFrom`), and the
   * last status it reported.
   */
  operation: z
    .strictObject({
      kind: z.enum(["account-create", "deployment-create"]),
      resumeFrom: z.string().max(64_000),
      status: z.string().max(64),
      polls: z.number().int().min(0),
    })
    .nullable(),
  startedAt: z.number(),
  updatedAt: z.number(),
  /** Azure's error, when the phase is `failed`. */
  error: z.strictObject({ code: z.string().nullable(), message: z.string() }).nullable(),
});
export type AzureProvisioningState = z.output<typeof azureProvisioningStateSchema>;

/**
 * The `settings` of an `azure-openai` provider record.
 *
 * Secrets (not here): `apiKey` (or the names deployments give in `apiKeySecret`), sent as the
 * `api-key` header when `auth` is `"api-key"`. With `auth: "entra"` no secret is needed: the
 * adapter's TokenCredential signs requests.
 *
 * Three ways to fill it:
 * - attached by hand: `endpoint` and `deployments`;
 * - attached by resource id: `resourceId`, and the provisioner fills `endpoint` and
 *   `deployments` from ARM (`discoverAzureDeployments`);
 * - managed: `managed`, and the provisioner creates the account and deployment, then fills
 *   `endpoint`, `deployments` and `provisioning`.
 */
export const azureOpenAISettingsSchema = z
  .strictObject({
    /** The resource endpoint, `https://{resource}.openai.azure.com`. */
    endpoint: endpointSchema.optional(),
    /** `deployments`: `/openai/deployments/{name}/...?api-version=`; `v1`: `/openai/v1/...`. Default `deployments`. */
    apiShape: z.enum(azureApiShapes).default("deployments"),
    /** The api-version query. Default `2024-10-21` with the deployments shape, none with v1. */
    apiVersion: apiVersionSchema.optional(),
    /** Default `api-key`. */
    auth: z.enum(azureAuthModes).default("api-key"),
    deployments: z.array(azureDeploymentSchema, { error: "must be an array of deployments" }).max(256).default([]),
    /** The account's ARM resource id, to discover deployments from. */
    resourceId: resourceIdSchema.optional(),
    managed: azureManagedSchema.optional(),
    provisioning: azureProvisioningStateSchema.optional(),
  })
  .superRefine((settings, context) => {
    const seen = new Set<string>();
    settings.deployments.forEach((deployment, index) => {
      const endpoint = deployment.endpoint ?? settings.endpoint;
      if (endpoint === undefined) {
        context.addIssue({
          code: "custom",
          path: ["deployments", index, "endpoint"],
          message: "is required when the provider has no endpoint",
        });
        return;
      }
      const key = `${endpoint.replace(/\/+$/, "")} ${deployment.name}`;
      if (seen.has(key)) {
        context.addIssue({
          code: "custom",
          path: ["deployments", index, "name"],
          message: "names a deployment already listed for the same endpoint",
        });
      }
      seen.add(key);
    });
    if (settings.apiShape === "deployments" && settings.apiVersion !== undefined && !/^\d{4}-\d{2}-\d{2}/.test(settings.apiVersion)) {
      context.addIssue({
        code: "custom",
        path: ["apiVersion"],
        message: "must be a dated api-version (2024-10-21) with the deployments URL shape; v1 and preview go with apiShape 'v1'",
      });
    }
  });

export type AzureOpenAISettings = z.output<typeof azureOpenAISettingsSchema>;
export type AzureOpenAISettingsInput = z.input<typeof azureOpenAISettingsSchema>;

/** The api-version query a request carries, or undefined for none. */
export function effectiveApiVersion(settings: Pick<AzureOpenAISettings, "apiShape" | "apiVersion">): string | undefined {
  if (settings.apiShape === "v1") return settings.apiVersion;
  return settings.apiVersion ?? defaultAzureApiVersion;
}

/**
 * Parses settings as the management API receives them: a 400 GatewayError naming the field under
 * `settings.` (`settings.deployments[0].endpoint`) when they are wrong.
 */
export function parseAzureSettings(settings: unknown): AzureOpenAISettings {
  try {
    return parseInput(azureOpenAISettingsSchema, settings, "settings");
  } catch (error) {
    if (!GatewayError.is(error)) throw error;
    throw new GatewayError(error.code, error.message, {
      param: error.param === null ? "settings" : `settings.${error.param}`,
      cause: error.cause,
    });
  }
}
