import { GatewayError } from "../errors/gateway-error.js";
import type { ProviderModel } from "./provider.js";

/**
 * The models of an OpenAI-style `GET /v1/models` answer (`{ "data": [{ "id", "created",
 * "owned_by" }] }`), for every adapter that discovers models. `data` missing or null is an empty
 * list (Ollama with nothing pulled), unless the object carries an `error` instead; rows without a string id are skipped, repeated ids kept once,
 * and `created` and `owned_by` kept only when they are usable. Anything that is not such a list is
 * a 502 naming `whose` ("The upstream's", "The model server's").
 */
export function parseModelList(text: string, whose: string): ProviderModel[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new GatewayError("upstream_error", `${whose} model list is not JSON.`, { cause: error });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new GatewayError("upstream_error", `${whose} model list is not a JSON object.`);
  }
  const data = (parsed as Record<string, unknown>).data;
  // A 200 carrying an error (a proxy's "temporarily unavailable") is a failure, not an empty
  // list: discovery then tries again soon instead of showing no models for a whole TTL.
  if (data === undefined && (parsed as Record<string, unknown>).error !== undefined) {
    throw new GatewayError("upstream_error", `${whose} model list is an error: ${JSON.stringify((parsed as Record<string, unknown>).error).slice(0, 200)}`);
  }
  if (data === undefined || data === null) return [];
  if (!Array.isArray(data)) throw new GatewayError("upstream_error", `${whose} model list has no \`data\` array.`);
  const models: ProviderModel[] = [];
  const seen = new Set<string>();
  for (const row of data) {
    if (typeof row !== "object" || row === null) continue;
    const { id, created, owned_by: ownedBy } = row as Record<string, unknown>;
    if (typeof id !== "string" || id === "" || seen.has(id)) continue;
    seen.add(id);
    const model: ProviderModel = { id };
    if (typeof created === "number" && Number.isFinite(created) && created > 0) model.created = created;
    if (typeof ownedBy === "string" && ownedBy !== "") model.ownedBy = ownedBy;
    models.push(model);
  }
  return models;
}
