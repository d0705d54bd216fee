import { z } from "zod";
import { parseInput } from "../validation/parse-input.js";
import type { GatewayOptions, GatewayRetry, GatewayTimeouts } from "./gateway-options.js";
import { defaultRetry, defaultTimeouts } from "./gateway-options.js";
import { defaultFileTokenAllowance } from "./worst-case-cost.js";

/** The gateway's numeric options, with their defaults applied. */
export interface GatewayLimits {
  maxBodyBytes: number;
  defaultMaxOutputTokens: number;
  fileTokenAllowance: number;
  reservationLeaseMs: number;
  sweepIntervalMs: number;
  timeouts: GatewayTimeouts;
  retry: GatewayRetry;
}

const positive = z.number({ error: "must be a number" }).int({ error: "must be a whole number" }).min(1, { error: "must be at least 1" });
const nonNegative = z.number({ error: "must be a number" }).int({ error: "must be a whole number" }).min(0, { error: "must not be negative" });

/**
 * A host's numbers, checked when the gateway is made, and completed with the defaults: a limit
 * that is not a positive whole number (a string from a config file, NaN, 0 for "no limit") would
 * otherwise surface only as requests that time out at once, or never.
 */
const limitsSchema = z.object({
  maxBodyBytes: positive.default(8 * 1024 * 1024),
  defaultMaxOutputTokens: positive.default(4_096),
  fileTokenAllowance: nonNegative.default(defaultFileTokenAllowance),
  reservationLeaseMs: positive.default(10 * 60_000),
  sweepIntervalMs: nonNegative.default(60_000),
  timeouts: z
    .object({
      firstByteMs: positive.default(defaultTimeouts.firstByteMs),
      idleMs: positive.default(defaultTimeouts.idleMs),
      totalMs: positive.default(defaultTimeouts.totalMs),
    })
    .strict()
    .prefault({}),
  retry: z
    .object({
      attemptsPerDeployment: positive.default(defaultRetry.attemptsPerDeployment),
      baseDelayMs: nonNegative.default(defaultRetry.baseDelayMs),
      maxDelayMs: nonNegative.default(defaultRetry.maxDelayMs),
    })
    .strict()
    .prefault({}),
});

/** The options' limits, checked (a 400 GatewayError naming the field) and completed with the defaults. */
export function gatewayLimits(options: Pick<GatewayOptions, keyof GatewayLimits>): GatewayLimits {
  return parseInput(
    limitsSchema,
    {
      maxBodyBytes: options.maxBodyBytes,
      defaultMaxOutputTokens: options.defaultMaxOutputTokens,
      fileTokenAllowance: options.fileTokenAllowance,
      reservationLeaseMs: options.reservationLeaseMs,
      sweepIntervalMs: options.sweepIntervalMs,
      timeouts: options.timeouts,
      retry: options.retry,
    },
    "gateway options",
  );
}
