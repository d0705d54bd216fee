import { GatewayError } from "../errors/gateway-error.js";
import { keyAllows } from "../keys/key-store.js";
import { parseModelId } from "../provider/model-id.js";
import { principalIdSchema, providerNameSchema } from "../provider/provider-record.js";
import type { ProviderRecord } from "../provider/provider-record.js";
import type { Deployment, Provider } from "../provider/provider.js";
import type { Caller } from "./authenticate.js";
import { acceptsUnchanged } from "../validation/parse-arguments.js";
import type { ProviderRegistry } from "./provider-registry.js";
import type { StoreAnswers } from "./store-answers.js";

export interface ResolvedModel {
  /** The id as the client sent it: `owner:provider-name/model-name`. */
  modelId: string;
  record: ProviderRecord;
  provider: Provider;
  deployments: Deployment[];
}

export function modelNotFound(modelId: string): GatewayError {
  return new GatewayError(
    "model_not_found",
    `The model \`${modelId}\` does not exist or you do not have access to it.`,
    { param: "model" },
  );
}

/**
 * Finds the provider behind a model id and checks the caller may use it. A provider the caller
 * may not use answers exactly as one that does not exist (404 `model_not_found`), so ids reveal
 * nothing about other users' providers.
 */
export async function resolveModel(input: {
  modelId: string;
  caller: Caller;
  answers: StoreAnswers;
  registry: ProviderRegistry;
}): Promise<ResolvedModel> {
  const { modelId, caller } = input;
  const parsed = parseModelId(modelId);
  if (!parsed) {
    throw new GatewayError(
      "model_not_found",
      `The model \`${modelId}\` does not exist or you do not have access to it. Model ids look like 'owner:provider-name/model-name'; GET /models lists yours.`,
      { param: "model" },
    );
  }
  // An owner or provider name no provider could have is answered like any unknown model, not with
  // the catalog's 400 about its lookup arguments.
  if (!acceptsUnchanged(principalIdSchema, parsed.owner) || !acceptsUnchanged(providerNameSchema, parsed.providerName)) {
    throw modelNotFound(modelId);
  }
  const record = await input.answers.usableProvider(caller.userId, parsed.owner, parsed.providerName);
  if (!record) throw modelNotFound(modelId);

  if (caller.key && !keyAllows(caller.key, { providerId: record.id, modelId })) {
    throw new GatewayError("permission_denied", `This API key is restricted and may not use the model \`${modelId}\`.`, {
      param: "model",
    });
  }
  assertServing(record);

  const provider = await input.registry.get(record);
  const deployments = provider.deployments(parsed.model);
  if (deployments.length === 0) throw modelNotFound(modelId);
  return { modelId, record, provider, deployments };
}

/** Refuses, before any reservation, a provider whose status says it cannot serve. */
function assertServing(record: ProviderRecord): void {
  switch (record.status) {
    case "stopped":
      throw new GatewayError(
        "provider_unavailable",
        `The provider '${record.name}' is stopped: its session and tunnel must be restarted before it can serve requests.`,
      );
    case "provisioning":
      throw new GatewayError("provider_unavailable", `The provider '${record.name}' is still being provisioned; try again once it is ready.`);
    case "failed":
      throw new GatewayError(
        "provider_unavailable",
        `The provider '${record.name}' failed to provision${record.statusReason ? `: ${record.statusReason}` : "."}`,
      );
    default:
      return;
  }
}
