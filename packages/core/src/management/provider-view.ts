import { GatewayError } from "../errors/gateway-error.js";
import { formatModelId } from "../provider/model-id.js";
import type { ProviderKind, ProviderRecord, ProviderStatus } from "../provider/provider-record.js";
import type { ManagementContext } from "./management-context.js";

/** One model a provider serves, as clients name it and as the upstream does. */
export interface ProviderModelView {
  /** The gateway model id, `owner:provider-name/model-name`: what to send as `model`. */
  id: string;
  /** The upstream's own name for it (a model, or an Azure deployment). */
  model: string;
  /** Unix seconds, when the upstream says. */
  created: number | null;
}

/** What the actor may do with a provider. */
export interface ProviderAccess {
  /** See it, and send requests through it (`aiprovider:use`, or ownership). */
  use: boolean;
  /** Change it, delete it and manage its sharing (its owner, or an org admin). */
  manage: boolean;
}

/**
 * A provider as the management API shows it. It never holds a secret: `secretNames` says which
 * are set, so a page can show "API key: set".
 */
export interface ProviderView {
  id: string;
  kind: ProviderKind;
  owner: string;
  name: string;
  description: string | null;
  tags: string[];
  status: ProviderStatus;
  statusReason: string | null;
  /** The kind's non-secret settings (endpoint, ...), for those who may manage it; null otherwise. */
  settings: Record<string, unknown> | null;
  secretNames: string[];
  createdAt: number;
  updatedAt: number;
  /** Pass back as `expectedVersion` for an update that must not overwrite someone else's. */
  version: number;
  access: ProviderAccess;
  /** Its models; null when they were not asked for. Empty while the provider cannot serve. */
  models: ProviderModelView[] | null;
  /** Why its models could not be listed (upstream down, ...), else null. */
  modelsError: string | null;
}

/** Statuses in which a provider cannot serve: its upstream is not asked for models. */
const notServing: ReadonlySet<ProviderStatus> = new Set(["stopped", "provisioning", "failed"]);

/** How long a listing waits for one upstream's models: a page must not hang on one slow server. */
const modelListingTimeoutMs = 10_000;

export function toProviderView(
  record: ProviderRecord,
  access: ProviderAccess,
  models: { models: ProviderModelView[] | null; modelsError: string | null } = { models: null, modelsError: null },
): ProviderView {
  return {
    id: record.id,
    kind: record.kind,
    owner: record.owner,
    name: record.name,
    description: record.description,
    tags: [...record.tags],
    status: record.status,
    statusReason: record.statusReason,
    settings: access.manage ? structuredClone(record.settings) : null,
    secretNames: [...record.secretNames],
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    version: record.version,
    access: { ...access },
    models: models.models,
    modelsError: models.modelsError,
  };
}

/**
 * The provider's models through its live Provider (whose adapter caches discovery). A failure is
 * reported beside an empty list rather than thrown, so one broken upstream does not fail a page.
 */
export async function providerModels(
  context: ManagementContext,
  record: ProviderRecord,
): Promise<{ models: ProviderModelView[]; modelsError: string | null }> {
  if (notServing.has(record.status)) return { models: [], modelsError: null };
  try {
    const provider = await context.gateway.registry.get(record);
    const listed = await provider.listModels({ signal: AbortSignal.timeout(modelListingTimeoutMs) });
    return {
      models: listed.map((model) => ({
        id: formatModelId({ owner: record.owner, providerName: record.name, model: model.id }),
        model: model.id,
        created: model.created ?? null,
      })),
      modelsError: null,
    };
  } catch (error) {
    // GatewayError.from keeps an adapter's message and hides anything internal.
    return { models: [], modelsError: GatewayError.from(error).message };
  }
}
