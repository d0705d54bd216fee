import { z } from "zod";
import { listModels } from "../gateway/list-models.js";
import { parseInput } from "../validation/parse-input.js";
import { API_KEY_VARIABLE, renderConnectSnippets } from "./connect-snippets.js";
import type { ConnectSnippets } from "./connect-snippets.js";
import { actorSchema, requireActor } from "./management-context.js";
import type { ManagementContext } from "./management-context.js";

export const connectInputSchema = z.strictObject({
  actor: actorSchema,
  /**
   * The origin the request came to (`http://127.0.0.1:8080`), used when the gateway has no
   * `publicBaseUrl`. The HTTP API passes it; programmatic callers rarely need to.
   */
  origin: z.url({ protocol: /^https?$/, error: "must be an http(s) origin" }).optional(),
});
export type ConnectInput = z.input<typeof connectInputSchema>;

export interface ConnectModel {
  /** What to send as `model`: `owner:provider-name/model-name`. */
  id: string;
  /** The provider's owner. */
  ownedBy: string;
  /** Unix seconds. */
  created: number;
}

/** What an external tool (an SDK, Open WebUI, an editor) needs to use the gateway. */
export interface ConnectInfo {
  /** The OpenAI-compatible API's base URL: the SDKs' `base_url` / `baseURL`. */
  baseUrl: string;
  /** Where the snippets read the key from; create a key, then `export SLUICE_API_KEY=...`. */
  apiKeyVariable: string;
  /** The models the actor may use, as `GET /models` lists them for their keys. */
  models: ConnectModel[];
  /** Examples using the first model, or a placeholder when there is none. */
  snippets: ConnectSnippets;
}

export async function connectInfo(context: ManagementContext, raw: ConnectInput): Promise<ConnectInfo> {
  const input = parseInput(connectInputSchema, raw, "request");
  await requireActor(context, input.actor);
  const origin = (context.publicBaseUrl ?? input.origin ?? "").replace(/\/+$/, "");
  const baseUrl = `${origin}${context.openAIBasePath}`;
  const listed = await listModels({
    context: context.gateway,
    caller: { userId: input.actor, key: null, allocationId: null },
    signal: AbortSignal.timeout(10_000),
  });
  const models = listed.map((model) => ({ id: model.id, ownedBy: model.owned_by, created: model.created }));
  const model = models[0]?.id ?? "<a model id from GET /models>";
  return { baseUrl, apiKeyVariable: API_KEY_VARIABLE, models, snippets: renderConnectSnippets({ baseUrl, model }) };
}
