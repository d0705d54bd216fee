import { describe, expect, it } from "vitest";
import { seededRandom } from "../testing/seeded-random.js";
import { chargeInputSchema, isChargeInput, isReserveInput, reserveInputSchema } from "./budget-ledger.js";

const text = ["req_1", "", "x".repeat(200), "x".repeat(201), 7, null, undefined];
const principal = ["bench-user", "", "a:b", "a/b", "a b", "x".repeat(201), 3, undefined];
const key = ["key_1", null, "", 5, undefined];
const money = [0, 1, 2.5, -1, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2, Number.NaN, Infinity, "10", null, undefined];

const reserveFields: Record<string, unknown[]> = {
  requestId: text,
  allocationId: ["alc_1", "", 1, undefined],
  userId: principal,
  keyId: key,
  keyLimit: money,
  amount: money,
  leaseMs: [undefined, 1, 0, 60_000, 24 * 3_600_000, 24 * 3_600_000 + 1, 1.5, "1"],
  extra: [undefined, undefined, undefined, "surprise"],
};

const chargeFields: Record<string, unknown[]> = {
  requestId: text,
  allocationId: ["alc_1", "", undefined],
  userId: principal,
  keyId: key,
  providerId: ["prv_1", "", undefined],
  model: ["a:b/c", "", "m".repeat(512), "m".repeat(513), undefined],
  inputTokens: money,
  outputTokens: money,
  cost: money,
  extra: [undefined, undefined, undefined, 1],
};

function generate(next: () => number, fields: Record<string, unknown[]>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [field, values] of Object.entries(fields)) {
    // Mostly the field's first (valid) value, so that whole inputs are valid often enough too.
    const value = next() < 0.75 ? values[0] : values[Math.floor(next() * values.length)];
    if (value !== undefined) out[field] = value;
  }
  return out;
}

/**
 * The store hot path trusts these checks in place of the schemas, so each must accept exactly
 * what its schema accepts, over inputs built to hit every edge of every field.
 */
describe.each([
  { name: "isReserveInput", check: isReserveInput, schema: reserveInputSchema, fields: reserveFields },
  { name: "isChargeInput", check: isChargeInput, schema: chargeInputSchema, fields: chargeFields },
])("$name", ({ check, schema, fields }) => {
  it("agrees with its schema on 50,000 generated inputs", () => {
    const next = seededRandom(42);
    let accepted = 0;
    for (let index = 0; index < 50_000; index++) {
      const input = generate(next, fields);
      const schemaAccepts = schema.safeParse(input).success;
      if (check(input) !== schemaAccepts) expect.fail(`check says ${!schemaAccepts}, schema says ${schemaAccepts}: ${JSON.stringify(input)}`);
      if (schemaAccepts) accepted++;
    }
    expect(accepted).toBeGreaterThan(20);
  });

  it("refuses what is not a plain object", () => {
    for (const input of [null, undefined, "x", 1, [], Object.create(null) as object]) expect(check(input)).toBe(false);
  });
});
