import { parseInput } from "@sluice/core";
import { z } from "zod";
import { parseUpstreamTarget } from "./upstream-target.js";

const endpointSchema = z
  .string({ error: "must be a string" })
  .max(2_048, { error: "must be at most 2048 characters" })
  .superRefine((value, context) => {
    const parsed = parseUpstreamTarget(value);
    if (typeof parsed === "string") context.addIssue({ code: "custom", message: parsed });
  });

/**
 * Headers undici or the HTTP framing own, and `authorization`, which comes from the `apiKey`
 * secret: settings are readable by anyone who may see the provider, secrets are not.
 */
const reservedHeaders = new Set([
  "authorization",
  "connection",
  "content-length",
  "expect",
  "host",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

const headerNameSchema = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/, { error: "must be a valid HTTP header name" })
  .refine((name) => !reservedHeaders.has(name.toLowerCase()), {
    error: "is set by the adapter (the API key goes in the apiKey secret)",
  });

const headerValueSchema = z
  .string({ error: "must be a string" })
  .max(8_192, { error: "must be at most 8192 characters" })
  .regex(/^[^\r\n\0]*$/, { error: "must not contain line breaks" });

/**
 * The `settings` of an `openai-compatible` provider record. The management API validates creates
 * and updates with it; the adapter validates again when it builds the Provider.
 *
 * Secrets (not here): `apiKey`, optional, sent as `Authorization: Bearer <apiKey>`.
 */
export const openAICompatSettingsSchema = z.strictObject({
  /**
   * The full chat-completions URL (`https://host/v1/chat/completions`), or the API base URL
   * ending in `/v1`. `/embeddings`, `/completions` and `/models` are found beside it.
   */
  endpoint: endpointSchema,
  /** More endpoints serving the same models, tried in order after `endpoint` fails. */
  fallbackEndpoints: z.array(endpointSchema, { error: "must be an array of URLs" }).max(16).optional(),
  /**
   * The models to offer when the upstream cannot list its own (no `GET /models`, an error, or
   * an empty list).
   */
  models: z
    .array(z.string().min(1, { error: "must not be empty" }).max(512), { error: "must be an array of model names" })
    .max(1_000)
    .optional(),
  /** Static headers sent with every upstream request. */
  headers: z.record(headerNameSchema, headerValueSchema, { error: "must be an object of header names to strings" }).optional(),
  quirks: z
    .strictObject({
      /** Never send `stream_options`, for servers that reject it even on streams. */
      dropStreamOptions: z.boolean({ error: "must be a boolean" }).optional(),
    })
    .optional(),
});

export type OpenAICompatSettings = z.output<typeof openAICompatSettingsSchema>;

/** The secrets a create or update may set: `apiKey` alone; `null` removes it in an update. */
const openAICompatSecretsSchema = z.strictObject({
  apiKey: z.string({ error: "must be a string" }).min(1, { error: "must not be empty" }).max(16_384).nullable().optional(),
});

const openAICompatProviderSchema = z.object({ settings: openAICompatSettingsSchema, secrets: openAICompatSecretsSchema });

/**
 * The adapter's `validate` hook: checks a create's or update's settings and secrets before they
 * are stored, and returns the settings to store. A 400 names the field (`settings.endpoint`,
 * `secrets.apiKey`).
 */
export function validateOpenAICompatProvider(input: { settings: unknown; secrets: Record<string, string | null> }): OpenAICompatSettings {
  return parseInput(openAICompatProviderSchema, input, "provider").settings;
}
