import { z } from "zod";

/**
 * The request fields the gateway reads. Objects are loose: every other field passes through to
 * the upstream untouched (tools, response_format, logprobs, vendor extensions).
 */
const outputCap = z.number({ error: "must be an integer" }).int({ error: "must be an integer" }).min(1).max(10_000_000).nullable().optional();

/**
 * Messages are checked in place, not parsed: a zod object schema would rebuild every message
 * (content parts, images, tool calls) on every request just to read `role`, and the upstream gets
 * the client's own objects anyway.
 */
const messagesSchema = z
  .array(z.unknown(), { error: "must be an array of messages" })
  .min(1, { error: "must contain at least one message" })
  .superRefine((messages, context) => {
    messages.forEach((message, index) => {
      if (typeof message !== "object" || message === null || Array.isArray(message)) {
        context.addIssue({ code: "custom", path: [index], message: "must be a message object" });
      } else if (typeof (message as { role?: unknown }).role !== "string") {
        context.addIssue({ code: "custom", path: [index, "role"], message: "must be a string" });
      }
    });
  });

export const chatCompletionRequestSchema = z
  .looseObject({
    model: z.string({ error: "must be a string" }).min(1, { error: "must not be empty" }),
    messages: messagesSchema,
    stream: z.boolean({ error: "must be a boolean" }).nullable().optional(),
    stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullable().optional(),
    max_tokens: outputCap,
    max_completion_tokens: outputCap,
    n: z.number({ error: "must be an integer" }).int().min(1).max(128).nullable().optional(),
  })
  .refine((body) => body.stream === true || body.stream_options === undefined || body.stream_options === null, {
    error: "is only allowed when 'stream' is enabled",
    path: ["stream_options"],
  });
export type ChatCompletionRequest = z.output<typeof chatCompletionRequestSchema>;

/**
 * Whether `body` certainly passes `chatCompletionRequestSchema`, checked by hand: on every chat
 * request, zod's parse of the body (it rebuilds the object and its messages array) cost more than
 * the rest of the request's validation put together (`npm run bench` profiles). When this says
 * no, the schema runs anyway and words the error; so this may be stricter than the schema, never
 * looser (a test holds the two together on generated bodies).
 */
export function isWellFormedChatRequest(body: Record<string, unknown>): body is ChatCompletionRequest {
  if (typeof body.model !== "string" || body.model.length === 0) return false;
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) return false;
  for (const message of messages as unknown[]) {
    if (typeof message !== "object" || message === null || Array.isArray(message)) return false;
    if (typeof (message as { role?: unknown }).role !== "string") return false;
  }
  const stream = body.stream;
  if (stream !== undefined && stream !== null && typeof stream !== "boolean") return false;
  const options = body.stream_options;
  if (options !== undefined && options !== null) {
    if (stream !== true || typeof options !== "object" || Array.isArray(options)) return false;
    const includeUsage = (options as { include_usage?: unknown }).include_usage;
    if (includeUsage !== undefined && typeof includeUsage !== "boolean") return false;
  }
  return (
    isOptionalWhole(body.max_tokens, 1, 10_000_000) && isOptionalWhole(body.max_completion_tokens, 1, 10_000_000) && isOptionalWhole(body.n, 1, 128)
  );
}

function isOptionalWhole(value: unknown, min: number, max: number): boolean {
  return value === undefined || value === null || (Number.isInteger(value) && (value as number) >= min && (value as number) <= max);
}

export const completionRequestSchema = z.looseObject({
  model: z.string({ error: "must be a string" }).min(1, { error: "must not be empty" }),
  prompt: z.union([z.string(), z.array(z.string()), z.array(z.number()), z.array(z.array(z.number()))], {
    error: "must be a string, an array of strings, or token arrays",
  }),
  stream: z.boolean({ error: "must be a boolean" }).nullable().optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullable().optional(),
  max_tokens: outputCap,
  n: z.number().int().min(1).max(128).nullable().optional(),
});
export type CompletionRequest = z.output<typeof completionRequestSchema>;

export const embeddingRequestSchema = z.looseObject({
  model: z.string({ error: "must be a string" }).min(1, { error: "must not be empty" }),
  input: z.union(
    [
      z.string(),
      z.array(z.string()).min(1).max(2048),
      z.array(z.number().int()).min(1),
      z.array(z.array(z.number().int()).min(1)).min(1).max(2048),
    ],
    { error: "must be a string, an array of strings, or token arrays" },
  ),
  encoding_format: z.enum(["float", "base64"], { error: "must be 'float' or 'base64'" }).optional(),
  dimensions: z.number().int().min(1).optional(),
});
export type EmbeddingRequest = z.output<typeof embeddingRequestSchema>;
