import { GatewayError } from "@sluice/core";
import { parseAzureSettings } from "./azure-settings.js";

/** What a managed provider's creation fixed: to change any of them, delete and recreate it (SPEC.md). */
const fixedAtCreation = ["region", "model", "modelVersion", "modelFormat", "subscriptionId", "resourceGroup", "accountName", "deploymentName"] as const;

/**
 * Refuses a settings update that the adapter's `validate` hook cannot see is wrong, because it
 * needs the stored settings too. Hosts call it on every update of an `azure-openai` provider:
 *
 * - a managed provider's region, model, model version, subscription, resource group, account and
 *   deployment name are fixed at creation, and a provider cannot become managed or stop being so;
 * - `provisioning` belongs to the provisioner: an update must carry it over unchanged.
 *
 * SKU capacity and resource tags may change (they apply to the next provisioning). Throws a 400
 * GatewayError naming the field.
 */
export function assertAzureSettingsUpdate(input: { previous: Record<string, unknown>; next: Record<string, unknown> }): void {
  const previous = parseAzureSettings(input.previous);
  const next = parseAzureSettings(input.next);
  if ((previous.managed === undefined) !== (next.managed === undefined)) {
    throw fixed("settings.managed", "A provider cannot become managed, or stop being managed, after its creation; delete and recreate it.");
  }
  if (previous.managed !== undefined && next.managed !== undefined) {
    for (const field of fixedAtCreation) {
      if (previous.managed[field] !== next.managed[field]) {
        throw fixed(
          `settings.managed.${field}`,
          `A managed Azure OpenAI provider's ${field} is fixed at creation; delete and recreate the provider to change it.`,
        );
      }
    }
  }
  if (JSON.stringify(previous.provisioning ?? null) !== JSON.stringify(next.provisioning ?? null)) {
    throw fixed("settings.provisioning", "The provisioning state is written by the provisioner only; carry it over unchanged.");
  }
}

function fixed(param: string, message: string): GatewayError {
  return new GatewayError("invalid_request", message, { param });
}
