import { keyAllows } from "../keys/key-store.js";
import { formatModelId } from "../provider/model-id.js";
import type { ProviderRecord } from "../provider/provider-record.js";
import type { Caller } from "./authenticate.js";
import type { GatewayContext } from "./gateway-context.js";

export interface OpenAIModel {
  id: string;
  object: "model";
  created: number;
  owned_by: string;
}

/** Statuses in which a provider cannot serve, so its models are not offered. */
const notServing = new Set(["stopped", "provisioning", "failed"]);

/**
 * Exactly the models the caller may use, as `owner:provider-name/model-name`: providers they hold
 * `aiprovider:use` on (their own included), narrowed by their key's restrictions. A provider whose
 * discovery fails or is slow contributes nothing rather than failing the whole list.
 */
export async function listModels(input: { context: GatewayContext; caller: Caller; signal: AbortSignal }): Promise<OpenAIModel[]> {
  const { context, caller } = input;
  const { catalog, permissions } = context.stores;
  const records = await catalog.list();
  const usable: ProviderRecord[] = [];
  for (const record of records) {
    if (notServing.has(record.status)) continue;
    if (caller.key && caller.key.restrictions.providers !== null && !caller.key.restrictions.providers.includes(record.id)) continue;
    if (await permissions.canUse(caller.userId, record)) usable.push(record);
  }

  const perProvider = await Promise.all(
    usable.map(async (record) => {
      try {
        const provider = await context.registry.get(record);
        const signal = AbortSignal.any([input.signal, AbortSignal.timeout(context.timeouts.firstByteMs)]);
        const models: OpenAIModel[] = [];
        for (const model of await provider.listModels({ signal })) {
          const id = formatModelId({ owner: record.owner, providerName: record.name, model: model.id });
          if (caller.key && !keyAllows(caller.key, { providerId: record.id, modelId: id })) continue;
          models.push({ id, object: "model", created: model.created ?? Math.floor(record.createdAt / 1000), owned_by: record.owner });
        }
        return models;
      } catch {
        return [];
      }
    }),
  );
  return perProvider.flat();
}
