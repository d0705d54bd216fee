import { describe, expect, it } from "vitest";
import { GatewayError } from "../errors/gateway-error.js";
import { gatewayLimits } from "./gateway-limits.js";
import { defaultRetry, defaultTimeouts } from "./gateway-options.js";

describe("gatewayLimits", () => {
  it("fills in every default", () => {
    expect(gatewayLimits({})).toEqual({
      maxBodyBytes: 8 * 1024 * 1024,
      defaultMaxOutputTokens: 4_096,
      fileTokenAllowance: 131_072,
      reservationLeaseMs: 10 * 60_000,
      sweepIntervalMs: 60_000,
      timeouts: defaultTimeouts,
      retry: defaultRetry,
    });
  });

  it("keeps a host's values, and the defaults of what it leaves out or leaves undefined", () => {
    const limits = gatewayLimits({ timeouts: { idleMs: 5_000, totalMs: undefined }, retry: { attemptsPerDeployment: 1 }, sweepIntervalMs: 0 });
    expect(limits.timeouts).toEqual({ ...defaultTimeouts, idleMs: 5_000 });
    expect(limits.retry).toEqual({ ...defaultRetry, attemptsPerDeployment: 1 });
    expect(limits.sweepIntervalMs).toBe(0);
  });

  it("accepts a total limit longer than one Node timer can wait", () => {
    expect(gatewayLimits({ timeouts: { totalMs: 2 ** 40 } }).timeouts.totalMs).toBe(2 ** 40);
  });

  it.each([
    [{ timeouts: { idleMs: Number.NaN } }, "timeouts.idleMs"],
    [{ timeouts: { firstByteMs: 0 } }, "timeouts.firstByteMs"],
    [{ timeouts: { totalMs: -1 } }, "timeouts.totalMs"],
    [{ timeouts: { idleMs: "30s" } }, "timeouts.idleMs"],
    [{ timeouts: { idleMs: 1.5 } }, "timeouts.idleMs"],
    [{ timeouts: { idle: 1_000 } }, "timeouts.idle"],
    [{ retry: { attemptsPerDeployment: 0 } }, "retry.attemptsPerDeployment"],
    [{ retry: { maxDelayMs: -5 } }, "retry.maxDelayMs"],
    [{ maxBodyBytes: Infinity }, "maxBodyBytes"],
    [{ reservationLeaseMs: 0 }, "reservationLeaseMs"],
    [{ sweepIntervalMs: -1 }, "sweepIntervalMs"],
    [{ fileTokenAllowance: -1 }, "fileTokenAllowance"],
  ])("refuses %j, naming %s", (options, param) => {
    let thrown: unknown;
    try {
      gatewayLimits(options as never);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(GatewayError);
    expect(thrown).toMatchObject({ param, message: expect.stringContaining(`Invalid gateway options: '${param}'`) });
  });
});
