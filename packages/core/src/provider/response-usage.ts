import type { TokenUsage } from "./provider.js";

/**
 * The usage of a complete (non-streamed) answer, read loosely: `prompt_tokens`,
 * `completion_tokens` and `prompt_tokens_details.cached_tokens` when they are numbers. Null when
 * the upstream reported none (or nonsense), so the gateway counts instead of charging a guess.
 *
 * Embeddings report no `completion_tokens` (`{prompt_tokens, total_tokens}`): with
 * `outputRequired: false` a missing one reads as 0.
 */
export function readResponseUsage(body: Record<string, unknown>, options: { outputRequired: boolean }): TokenUsage | null {
  const usage = body.usage;
  if (typeof usage !== "object" || usage === null || Array.isArray(usage)) return null;
  const fields = usage as Record<string, unknown>;
  const inputTokens = tokenCount(fields.prompt_tokens);
  let outputTokens = tokenCount(fields.completion_tokens);
  if (outputTokens === null && !options.outputRequired && fields.completion_tokens === undefined) outputTokens = 0;
  if (inputTokens === null || outputTokens === null) return null;
  const result: TokenUsage = { inputTokens, outputTokens, source: "upstream" };
  const details = fields.prompt_tokens_details;
  if (typeof details === "object" && details !== null) {
    const cached = tokenCount((details as Record<string, unknown>).cached_tokens);
    if (cached !== null) result.cachedInputTokens = cached;
  }
  return result;
}

function tokenCount(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 ? Math.round(value) : null;
}
