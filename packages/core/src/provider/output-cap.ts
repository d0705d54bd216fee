import type { OpenAIRequestBody } from "./provider.js";

/**
 * `body` with the gateway's output cap (`ProviderCall.outputCap`) in `field`, when the body names
 * no cap of its own: the upstream must stop where the reservation stops, or a request without
 * `max_tokens` could cost whatever the model's own limit allows. A new object only when the cap
 * is added.
 */
export function withOutputCap(body: OpenAIRequestBody, cap: number | undefined, field: "max_tokens" | "max_completion_tokens"): OpenAIRequestBody {
  if (cap === undefined || hasCap(body.max_tokens) || hasCap(body.max_completion_tokens)) return body;
  return { ...body, [field]: cap };
}

function hasCap(value: unknown): boolean {
  return value !== undefined && value !== null;
}
