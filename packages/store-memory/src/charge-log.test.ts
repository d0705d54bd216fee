import type { Charge } from "@sluice/core";
import { describe, expect, it } from "vitest";
import { ChargeLog } from "./charge-log.js";

function chargeNumber(index: number): Charge {
  return {
    requestId: `req_${index}`,
    allocationId: index % 3 === 0 ? "alc_a" : "alc_b",
    userId: `user-${index % 7}`,
    keyId: index % 5 === 0 ? null : `key_${index % 4}`,
    providerId: "prv_1",
    model: index % 2 === 0 ? "alice:vllm/llama" : "bob:azure/gpt-4o",
    inputTokens: index * 3,
    outputTokens: index,
    // Past 2^32, to show the columns hold whole micro-dollars beyond 32 bits.
    cost: 2 ** 40 + index,
    at: Date.UTC(2026, 10, 1) + index * 1_000,
  };
}

describe("ChargeLog", () => {
  it("gives back every charge exactly as appended, in order, across several growths", () => {
    const log = new ChargeLog();
    const appended = Array.from({ length: 5_000 }, (_, index) => chargeNumber(index));
    for (const charge of appended) log.append(charge);

    expect(log.length).toBe(5_000);
    expect([...log.charges()]).toStrictEqual(appended);
    expect(log.get("req_4321")).toStrictEqual(appended[4321]);
    expect(log.get("req_0")?.keyId).toBeNull();
    expect(log.has("req_4999")).toBe(true);
    expect(log.get("req_5000")).toBeUndefined();
    expect(log.has("req_5000")).toBe(false);
  });

  it("lists only the charges made in [from, to) when asked for a range", () => {
    const log = new ChargeLog();
    const appended = Array.from({ length: 50 }, (_, index) => chargeNumber(index));
    for (const charge of appended) log.append(charge);
    const from = appended[10]!.at;
    const to = appended[20]!.at;
    expect([...log.charges(from, to)]).toStrictEqual(appended.slice(10, 20));
    expect([...log.charges(to, to)]).toStrictEqual([]);
    // The same charges for reports, without the request ids they do not read.
    expect([...log.unnamedCharges(from, to)]).toStrictEqual(appended.slice(10, 20).map(({ requestId: _requestId, ...fields }) => fields));
  });

  it("hands out new objects, so a caller cannot change what is stored", () => {
    const log = new ChargeLog();
    const charge = chargeNumber(1);
    log.append(charge);
    const copy = log.get("req_1")!;
    copy.cost = 0;
    charge.cost = 0;
    expect(log.get("req_1")?.cost).toBe(2 ** 40 + 1);
  });

  it("refuses a second charge for one request", () => {
    const log = new ChargeLog();
    log.append(chargeNumber(1));
    expect(() => log.append({ ...chargeNumber(2), requestId: "req_1" })).toThrow(/already/);
    expect(log.length).toBe(1);
  });

  it("sums one allocation's charges over [from, to)", () => {
    const log = new ChargeLog();
    const appended = Array.from({ length: 3_000 }, (_, index) => chargeNumber(index));
    for (const charge of appended) log.append(charge);
    const from = appended[100]!.at;
    const to = appended[2_500]!.at;
    for (const allocationId of ["alc_a", "alc_b"]) {
      const expected = appended
        .filter((charge) => charge.allocationId === allocationId && charge.at >= from && charge.at < to)
        .reduce((sum, charge) => sum + charge.cost, 0);
      expect(log.costOf(allocationId, from, to)).toBe(expected);
    }
    expect(log.costOf("alc_unknown", 0, Number.MAX_SAFE_INTEGER)).toBe(0);
    expect(log.costOf("alc_a", to, to)).toBe(0);
  });
});
