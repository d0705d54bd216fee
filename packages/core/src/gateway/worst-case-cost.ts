import type { MicroDollars } from "../money/micro-dollars.js";
import { costOf } from "../pricing/price-book.js";
import type { ModelPrice } from "../pricing/price-book.js";

/**
 * The most a request can cost, reserved before any upstream call. Input: a byte-pair tokenizer
 * never yields more tokens than the UTF-8 bytes it reads, so the body's size bounds the prompt
 * without tokenizing it. Output: the request's own cap, or the configured default, times `n`.
 */
export function worstCaseCost(input: {
  price: ModelPrice | null;
  bodyBytes: number;
  maxOutputTokens: number | null | undefined;
  defaultMaxOutputTokens: number;
  choices: number | null | undefined;
}): MicroDollars {
  if (!input.price) return 0;
  const outputTokens = (input.maxOutputTokens ?? input.defaultMaxOutputTokens) * (input.choices ?? 1);
  return costOf(input.price, { inputTokens: input.bodyBytes, outputTokens });
}
