import { describe, expect, it } from "vitest";
import { GatewayError } from "../errors/gateway-error.js";
import { costOf, createPriceBook } from "./price-book.js";

describe("costOf", () => {
  it("prices input and output tokens per million, in micro-dollars", () => {
    // $2.50 / 1M input, $10 / 1M output: 1,000 in + 500 out = 2,500 + 5,000 micro-dollars.
    expect(costOf({ input: 2_500_000, output: 10_000_000 }, { inputTokens: 1_000, outputTokens: 500 })).toBe(7_500);
  });

  it("rounds up to the next micro-dollar, never down", () => {
    expect(costOf({ input: 1, output: 0 }, { inputTokens: 1, outputTokens: 0 })).toBe(1);
    expect(costOf({ input: 1_000_000, output: 0 }, { inputTokens: 3, outputTokens: 0 })).toBe(3);
    expect(costOf({ input: 0, output: 0 }, { inputTokens: 10, outputTokens: 10 })).toBe(0);
  });

  it("charges cached input tokens at the cached price", () => {
    const price = { input: 2_000_000, cachedInput: 500_000, output: 0 };
    expect(costOf(price, { inputTokens: 1_000, cachedInputTokens: 600, outputTokens: 0 })).toBe(800 + 300);
  });

  it("never counts more cached tokens than input tokens", () => {
    const price = { input: 2_000_000, cachedInput: 0, output: 0 };
    expect(costOf(price, { inputTokens: 10, cachedInputTokens: 50, outputTokens: 0 })).toBe(0);
  });

  it("agrees with exact integer arithmetic on every size, on both sides of 2^53", () => {
    const exact = (price: { input: number; output: number; cachedInput?: number }, usage: { inputTokens: number; outputTokens: number; cachedInputTokens: number }) => {
      const cached = BigInt(Math.min(usage.cachedInputTokens, usage.inputTokens));
      const numerator =
        (BigInt(usage.inputTokens) - cached) * BigInt(price.input) + cached * BigInt(price.cachedInput ?? price.input) + BigInt(usage.outputTokens) * BigInt(price.output);
      return Number((numerator + 999_999n) / 1_000_000n);
    };
    let seed = 11;
    const random = (limit: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return Math.floor((seed / 2 ** 31) * limit);
    };
    const scales = [10, 1_000, 1_000_000, 1_000_000_000, 90_000_000_000];
    for (let index = 0; index < 20_000; index++) {
      const price = { input: random(scales[random(5)]!), output: random(scales[random(5)]!), cachedInput: random(scales[random(5)]!) };
      const usage = { inputTokens: random(scales[random(4)]!), outputTokens: random(scales[random(4)]!), cachedInputTokens: random(scales[random(4)]!) };
      const expected = exact(price, usage);
      if (expected > Number.MAX_SAFE_INTEGER) continue;
      expect(costOf(price, usage), JSON.stringify({ price, usage })).toBe(expected);
    }
    // Sums right at a micro-dollar boundary, where a rounded division would tip either way.
    for (const tokens of [999_999, 1_000_000, 1_000_001, 8_999_999_999, 9_000_000_000, 9_000_000_001]) {
      expect(costOf({ input: 1_000_000, output: 0 }, { inputTokens: tokens, outputTokens: 0 })).toBe(tokens);
      expect(costOf({ input: 999_999, output: 1 }, { inputTokens: tokens, outputTokens: tokens })).toBe(tokens);
    }
  });

  it("stays exact past 2^53 intermediate products", () => {
    const cost = costOf({ input: 9_000_000_000, output: 0 }, { inputTokens: 1_000_000_000, outputTokens: 0 });
    expect(cost).toBe(9_000_000_000_000);
  });
});

describe("createPriceBook", () => {
  const book = createPriceBook({
    prices: [
      { model: "gpt-4o", input: 2_500_000, output: 10_000_000 },
      { providerId: "prv_a", model: "gpt-4o", input: 2_000_000, output: 8_000_000 },
      { providerId: "prv_b", model: "*", input: 100_000, output: 200_000 },
    ],
  });

  it("prefers the provider's own price for a model", () => {
    expect(book.priceFor({ providerId: "prv_a", model: "gpt-4o" })).toEqual({ input: 2_000_000, output: 8_000_000 });
  });

  it("falls back to the model's price on any provider, then the provider's wildcard", () => {
    expect(book.priceFor({ providerId: "prv_c", model: "gpt-4o" })?.input).toBe(2_500_000);
    expect(book.priceFor({ providerId: "prv_b", model: "llama" })?.input).toBe(100_000);
  });

  it("answers null for an unpriced model unless a fallback is configured", () => {
    expect(book.priceFor({ providerId: "prv_c", model: "llama" })).toBeNull();
    const withFallback = createPriceBook({ fallback: { input: 1, output: 2 } });
    expect(withFallback.priceFor({ providerId: "prv_c", model: "llama" })).toEqual({ input: 1, output: 2 });
  });

  it("refuses fractional or negative prices", () => {
    for (const input of [0.5, -1, Number.NaN]) {
      let caught: unknown;
      try {
        createPriceBook({ prices: [{ model: "m", input, output: 0 }] });
      } catch (error) {
        caught = error;
      }
      expect(GatewayError.is(caught)).toBe(true);
      expect((caught as GatewayError).param).toBe("[0].input");
    }
  });
});
