import type { MicroDollars } from "../money/micro-dollars.js";
import { costOf } from "../pricing/price-book.js";
import type { ModelPrice } from "../pricing/price-book.js";

/**
 * The most a request can cost, reserved before any upstream call. Input: a byte-pair tokenizer
 * never yields more tokens than the UTF-8 bytes it reads, so the body's size bounds the prompt
 * without tokenizing it; an image is the exception (a short URL, hundreds to thousands of
 * tokens), so each image part adds `imageTokenAllowance`. Output: the request's own cap, or the
 * configured default, times `n`.
 */
export function worstCaseCost(input: {
  price: ModelPrice | null;
  bodyBytes: number;
  maxOutputTokens: number | null | undefined;
  defaultMaxOutputTokens: number;
  choices: number | null | undefined;
  imageParts?: number;
}): MicroDollars {
  if (!input.price) return 0;
  const outputTokens = (input.maxOutputTokens ?? input.defaultMaxOutputTokens) * (input.choices ?? 1);
  const inputTokens = input.bodyBytes + (input.imageParts ?? 0) * imageTokenAllowance;
  return costOf(input.price, { inputTokens, outputTokens });
}

/**
 * The most input tokens one image costs at OpenAI: 1,445 for gpt-4o at high detail, and up to
 * 1,536 patches times the model's multiplier for the patch-based models (about 3,780 for
 * gpt-4.1-nano), rounded up. Other vendors' vision models price images in the same range.
 */
export const imageTokenAllowance = 4_096;

/** Image parts in chat messages: `image_url` (Chat Completions) and `input_image` content parts. */
export function countImageParts(messages: readonly unknown[]): number {
  let images = 0;
  for (const message of messages) {
    const content = (message as { content?: unknown }).content;
    if (!Array.isArray(content)) continue;
    for (const part of content) {
      const type = (part as { type?: unknown } | null)?.type;
      if (type === "image_url" || type === "input_image") images += 1;
    }
  }
  return images;
}
