import type { MicroDollars } from "../money/micro-dollars.js";
import { costOf } from "../pricing/price-book.js";
import type { ModelPrice } from "../pricing/price-book.js";

/**
 * The most a request can cost, reserved before any upstream call. Input: a byte-pair tokenizer
 * never yields more tokens than the UTF-8 bytes it reads, so the body's size bounds the prompt
 * without tokenizing it. Two kinds of content part are the exception: an image (a short URL,
 * hundreds to thousands of tokens) adds `imageTokenAllowance`, and a file adds the gateway's file
 * allowance (an uploaded file's id says nothing of its size, and a PDF is billed as its text plus
 * an image of every page). Output: the request's own cap, or the configured default, times `n`.
 */
export function worstCaseCost(input: {
  price: ModelPrice | null;
  bodyBytes: number;
  maxOutputTokens: number | null | undefined;
  defaultMaxOutputTokens: number;
  choices: number | null | undefined;
  parts?: InputParts;
  fileTokenAllowance?: number;
}): MicroDollars {
  if (!input.price) return 0;
  const outputTokens = (input.maxOutputTokens ?? input.defaultMaxOutputTokens) * (input.choices ?? 1);
  const parts = input.parts ?? noParts;
  const inputTokens = input.bodyBytes + parts.images * imageTokenAllowance + parts.files * (input.fileTokenAllowance ?? defaultFileTokenAllowance);
  return costOf(input.price, { inputTokens, outputTokens });
}

/**
 * The most input tokens one image costs at OpenAI: 1,445 for gpt-4o at high detail, and up to
 * 1,536 patches times the model's multiplier for the patch-based models (about 3,780 for
 * gpt-4.1-nano), rounded up. Other vendors' vision models price images in the same range.
 */
export const imageTokenAllowance = 4_096;

/**
 * The input tokens a file part is reserved for by default: 128 Ki, the context window of many
 * current chat models, which no file's prompt can outgrow on them. A host whose models take more
 * (some take 200k or 1M tokens) sets `fileTokenAllowance`.
 */
export const defaultFileTokenAllowance = 131_072;

/** The content parts of a request whose tokens its size does not bound. */
export interface InputParts {
  /** `image_url` (Chat Completions) and `input_image` parts. */
  images: number;
  /** `file` (Chat Completions: `file_id` or inline `file_data`) and `input_file` parts. */
  files: number;
}

const noParts: InputParts = Object.freeze({ images: 0, files: 0 });

/** The image and file parts in chat messages' content arrays. */
export function countInputParts(messages: readonly unknown[]): InputParts {
  let images = 0;
  let files = 0;
  for (const message of messages) {
    const content = (message as { content?: unknown }).content;
    if (!Array.isArray(content)) continue;
    for (const part of content) {
      const type = (part as { type?: unknown } | null)?.type;
      if (type === "image_url" || type === "input_image") images += 1;
      else if (type === "file" || type === "input_file") files += 1;
    }
  }
  return images === 0 && files === 0 ? noParts : { images, files };
}
