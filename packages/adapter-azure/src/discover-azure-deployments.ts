import { CognitiveServicesManagementClient } from "@azure/arm-cognitiveservices";
import type { CognitiveServicesManagementClientOptionalParams, Deployment as ArmDeployment } from "@azure/arm-cognitiveservices";
import type { TokenCredential } from "@azure/core-auth";
import { GatewayError } from "@sluice/core";
import { accountResourceIdPattern } from "./azure-settings.js";

/** An account's coordinates, from its resource id. */
export interface AzureAccountRef {
  subscriptionId: string;
  resourceGroup: string;
  accountName: string;
}

/** `/subscriptions/{id}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/{name}` -> its parts. */
export function parseAccountResourceId(resourceId: string): AzureAccountRef {
  const match = accountResourceIdPattern.exec(resourceId);
  if (match === null) {
    throw new GatewayError("invalid_request", `'${resourceId}' is not the resource id of a Cognitive Services account.`, {
      param: "settings.resourceId",
    });
  }
  return { subscriptionId: match[1]!, resourceGroup: match[2]!, accountName: match[3]! };
}

/** One deployment ARM lists for an account. */
export interface DiscoveredAzureDeployment {
  name: string;
  /** The model it runs (`gpt-4o`). */
  model: string;
  modelVersion: string | null;
  skuName: string | null;
  capacity: number | null;
  /** ARM's `provisioningState` (`Succeeded`, `Creating`, `Failed`, ...). */
  provisioningState: string | null;
}

export interface DiscoveredAzureResource {
  /** The account's data-plane endpoint (`https://{name}.openai.azure.com/`). */
  endpoint: string | null;
  kind: string | null;
  location: string | null;
  deployments: DiscoveredAzureDeployment[];
}

/**
 * Reads an existing Azure OpenAI account through ARM: its endpoint and every deployment with the
 * model it runs. The stable data plane has no deployment list (wire-formats §3.1), so this is how
 * an attached resource's models are found; the result fills `endpoint` and `deployments` of an
 * `azure-openai` provider's settings. The credential needs read access to the account (Reader).
 * Rejects with the SDK's RestError when ARM refuses.
 */
export function discoverAzureDeployments(input: {
  credential: TokenCredential;
  /** `/subscriptions/{id}/resourceGroups/{group}/providers/Microsoft.CognitiveServices/accounts/{name}` */
  resourceId: string;
  /** Passed to the management client (a sovereign cloud's `endpoint`, an `httpClient`). */
  managementClientOptions?: CognitiveServicesManagementClientOptionalParams;
  signal?: AbortSignal;
}): Promise<DiscoveredAzureResource> {
  const account = parseAccountResourceId(input.resourceId);
  const client = new CognitiveServicesManagementClient(input.credential, account.subscriptionId, input.managementClientOptions);
  return readAzureAccount({ client, account, signal: input.signal });
}

/** `discoverAzureDeployments` with a client already made. */
export async function readAzureAccount(input: {
  client: CognitiveServicesManagementClient;
  account: AzureAccountRef;
  signal?: AbortSignal;
}): Promise<DiscoveredAzureResource> {
  const { client, account, signal } = input;
  const found = await client.accounts.get(account.resourceGroup, account.accountName, { abortSignal: signal });
  const deployments: DiscoveredAzureDeployment[] = [];
  for await (const deployment of client.deployments.list(account.resourceGroup, account.accountName, { abortSignal: signal })) {
    const described = describeDeployment(deployment);
    if (described !== null) deployments.push(described);
  }
  return {
    endpoint: found.properties?.endpoint ?? null,
    kind: found.kind ?? null,
    location: found.location ?? null,
    deployments,
  };
}

export function describeDeployment(deployment: ArmDeployment): DiscoveredAzureDeployment | null {
  const model = deployment.properties?.model?.name;
  if (deployment.name === undefined || model === undefined) return null;
  return {
    name: deployment.name,
    model,
    modelVersion: deployment.properties?.model?.version ?? null,
    skuName: deployment.sku?.name ?? null,
    capacity: deployment.sku?.capacity ?? null,
    provisioningState: deployment.properties?.provisioningState ?? null,
  };
}
