import type { ProviderResponse } from "../provider/provider.js";

/**
 * The JSON text of a non-streamed answer, naming the gateway's model id.
 *
 * When the adapter passed on the upstream's text, that text is the answer with its `model`
 * renamed in place: every other byte (field order, fields the gateway does not know, number
 * formatting) is the upstream's, and the body is not serialized a second time, which for an
 * embeddings list costs more than everything else the gateway does. The `model` replaced is the
 * first spelled exactly as the parsed body's top-level value (`"model":"x"` or `"model": "x"`);
 * anything else (no text, no such spelling, no string model) falls back to serializing the
 * parsed body with the id, which also adds a `model` the upstream left out.
 */
export function answerText(response: ProviderResponse, modelId: string): string {
  const text = response.text;
  const upstreamModel = response.body.model;
  if (text !== undefined && typeof upstreamModel === "string") {
    const value = JSON.stringify(upstreamModel);
    const renamed = `"model":${JSON.stringify(modelId)}`;
    for (const needle of [`"model":${value}`, `"model": ${value}`]) {
      const at = text.indexOf(needle);
      if (at !== -1) return text.slice(0, at) + renamed + text.slice(at + needle.length);
    }
  }
  return JSON.stringify({ ...response.body, model: modelId });
}
