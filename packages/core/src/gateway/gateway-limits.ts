import { z } from "zod";
import { parseInput } from "../validation/parse-input.js";
import type { GatewayOptions, GatewayRetry, GatewayTimeouts } from "./gateway-options.js";
import { defaultRetry, defaultTimeouts } from "./gateway-options.js";

/** The gateway's numeric options, with their defaults applied. */
export interface GatewayLimits {
  maxBodyBytes: number;
  defaultMaxOutputTokens: number;
  reservationLeaseMs: number;
  sweepIntervalMs: number;
  timeouts: GatewayTimeouts;
  retry: GatewayRetry;
}

const positive = z.number({ error: "must be a number" }).int({ error: "must be a whole number" }).min(1, { error: "must be at least 1" });
const nonNegative = z.number({ error: "must be a number" }).int({ error: "must be a whole number" }).min(0, { error: "must not be negative" });

/**
 * A host's numbers, checked when the gateway is made: a limit that is not a positive whole number
 * (a string from a config file, NaN, 0 for "no limit") would otherwise surface only as requests
 * that time out at once, or never.
 */
const limitsSchema = z.object({
  maxBodyBytes: positive.optional(),
  defaultMaxOutputTokens: positive.optional(),
  reservationLeaseMs: positive.optional(),
  sweepIntervalMs: nonNegative.optional(),
  timeouts: z
    .object({ firstByteMs: positive.optional(), idleMs: positive.optional(), totalMs: positive.optional() })
    .strict()
    .optional(),
  retry: z
    .object({ attemptsPerDeployment: positive.optional(), baseDelayMs: nonNegative.optional(), maxDelayMs: nonNegative.optional() })
    .strict()
    .optional(),
});

/** The options' limits, checked (a 400 GatewayError naming the field) and completed with the defaults. */
export function gatewayLimits(options: Pick<GatewayOptions, keyof GatewayLimits>): GatewayLimits {
  const parsed = parseInput(
    limitsSchema,
    {
      maxBodyBytes: options.maxBodyBytes,
      defaultMaxOutputTokens: options.defaultMaxOutputTokens,
      reservationLeaseMs: options.reservationLeaseMs,
      sweepIntervalMs: options.sweepIntervalMs,
      timeouts: options.timeouts,
      retry: options.retry,
    },
    "gateway options",
  );
  return {
    maxBodyBytes: parsed.maxBodyBytes ?? 8 * 1024 * 1024,
    defaultMaxOutputTokens: parsed.defaultMaxOutputTokens ?? 4_096,
    reservationLeaseMs: parsed.reservationLeaseMs ?? 10 * 60_000,
    sweepIntervalMs: parsed.sweepIntervalMs ?? 60_000,
    timeouts: { ...defaultTimeouts, ...withoutUndefined(parsed.timeouts) },
    retry: { ...defaultRetry, ...withoutUndefined(parsed.retry) },
  };
}

/** `{ idleMs: undefined }` must not override a default. */
function withoutUndefined<T extends object>(value: T | undefined): Partial<T> {
  if (value === undefined) return {};
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined)) as Partial<T>;
}
