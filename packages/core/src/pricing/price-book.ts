import { z } from "zod";
import { microDollarsSchema } from "../money/micro-dollars.js";
import type { MicroDollars } from "../money/micro-dollars.js";
import { parseInput } from "../validation/parse-input.js";

/** Prices in micro-dollars per million tokens: $2.50 per 1M input tokens is `input: 2_500_000`. */
export interface ModelPrice {
  input: MicroDollars;
  output: MicroDollars;
  /** For input tokens the upstream served from its prompt cache; defaults to `input`. */
  cachedInput?: MicroDollars;
}

export const modelPriceSchema = z.strictObject({
  input: microDollarsSchema,
  output: microDollarsSchema,
  cachedInput: microDollarsSchema.optional(),
});

export const priceEntrySchema = modelPriceSchema.extend({
  /** A provider id; absent means any provider serving a model of that name. */
  providerId: z.string().min(1).optional(),
  /** The upstream model (or Azure deployment) name; `*` matches every model of the provider. */
  model: z.string().min(1),
});
export type PriceEntry = z.input<typeof priceEntrySchema>;

export interface PriceBook {
  /** The price for a model, most specific entry first; null when nothing matches. */
  priceFor(target: { providerId: string; model: string }): ModelPrice | null;
}

/**
 * A price list. Lookup order: this provider and model, then the model on any provider, then the
 * provider's `*` entry, then `fallback`. Later entries for the same target replace earlier ones.
 */
export function createPriceBook(options: { prices?: readonly PriceEntry[]; fallback?: ModelPrice | null } = {}): PriceBook {
  const entries = parseInput(z.array(priceEntrySchema), options.prices ?? [], "prices");
  const fallback = options.fallback ? parseInput(modelPriceSchema, options.fallback, "fallback price") : null;
  const byKey = new Map<string, ModelPrice>();
  for (const { providerId, model, ...price } of entries) byKey.set(`${providerId ?? ""}\u0000${model}`, price);
  return {
    priceFor({ providerId, model }) {
      return (
        byKey.get(`${providerId}\u0000${model}`) ??
        byKey.get(`\u0000${model}`) ??
        byKey.get(`${providerId}\u0000*`) ??
        fallback
      );
    },
  };
}

/**
 * The cost of some tokens, rounded up to the next micro-dollar so that rounding never favours
 * the spender. Every request prices twice (its worst case, then its usage), so the usual sizes
 * are done in doubles, which are exact while the sum of products stays within 2^53; beyond, BigInt
 * keeps the product exact.
 */
export function costOf(price: ModelPrice, usage: { inputTokens: number; outputTokens: number; cachedInputTokens?: number }): MicroDollars {
  const cached = Math.min(usage.cachedInputTokens ?? 0, usage.inputTokens);
  const fresh = usage.inputTokens - cached;
  // Counts and prices are non-negative integers, so each product is at most the sum: if the sum
  // is a safe integer, every product was computed exactly.
  const sum = fresh * price.input + cached * (price.cachedInput ?? price.input) + usage.outputTokens * price.output;
  if (sum <= Number.MAX_SAFE_INTEGER) {
    const whole = Math.floor(sum / 1_000_000);
    // The division is rounded; the remainder, computed exactly, says which way.
    const remainder = sum - whole * 1_000_000;
    if (remainder < 0) return whole;
    if (remainder >= 1_000_000) return remainder === 1_000_000 ? whole + 1 : whole + 2;
    return remainder > 0 ? whole + 1 : whole;
  }
  const numerator =
    BigInt(fresh) * BigInt(price.input) +
    BigInt(cached) * BigInt(price.cachedInput ?? price.input) +
    BigInt(usage.outputTokens) * BigInt(price.output);
  const cost = (numerator + 999_999n) / 1_000_000n;
  if (cost > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError("cost exceeds the largest safe amount");
  return Number(cost);
}
