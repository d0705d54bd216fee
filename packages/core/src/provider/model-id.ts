/**
 * Gateway model ids are `owner:provider-name/model-name` (SPEC.md): the provider's owner, its name,
 * and the upstream model or Azure deployment. Owner ids and provider names contain neither `:` nor
 * `/`, so the first `:` and the first `/` after it split the id unambiguously, while the model name
 * keeps its own slashes and colons (`meta-llama/Llama-3-8B`, `llama3:latest`).
 */
export interface ModelId {
  owner: string;
  providerName: string;
  model: string;
}

export function parseModelId(id: string): ModelId | null {
  const colon = id.indexOf(":");
  if (colon <= 0) return null;
  const slash = id.indexOf("/", colon + 1);
  if (slash <= colon + 1 || slash === id.length - 1) return null;
  const owner = id.slice(0, colon);
  if (owner.includes("/")) return null;
  return { owner, providerName: id.slice(colon + 1, slash), model: id.slice(slash + 1) };
}

export function formatModelId(id: ModelId): string {
  return `${id.owner}:${id.providerName}/${id.model}`;
}
