import { describe, expect, it } from "vitest";
import { GatewayError } from "../errors/gateway-error.js";
import { parseProviderRef, providerRefSchema } from "./permission-store.js";

const ids = ["prv_1", "", "x".repeat(300), 7, null, undefined];
const owners = ["alice", "", "a:b", "a/b", "a b", "tab\there", "x".repeat(200), "x".repeat(201), "é", 3, undefined];
const kinds = ["azure-openai", "openai-compatible", "openai-tunnel", "openai", "", 1, undefined];
const extras = [undefined, "surprise"];

function outcome(run: () => unknown): { ok: true; value: unknown } | { ok: false; param: string | null } {
  try {
    return { ok: true, value: run() };
  } catch (error) {
    if (!GatewayError.is(error)) throw error;
    return { ok: false, param: error.param };
  }
}

describe("parseProviderRef", () => {
  it("accepts exactly what providerRefSchema accepts, and returns its parse", () => {
    let cases = 0;
    for (const id of ids) {
      for (const owner of owners) {
        for (const kind of kinds) {
          for (const extra of extras) {
            const input: Record<string, unknown> = { id, owner, kind };
            if (extra !== undefined) input.extra = extra;
            const reference = providerRefSchema.safeParse(input);
            const got = outcome(() => parseProviderRef(input, "access check"));
            expect(got.ok).toBe(reference.success);
            if (got.ok && reference.success) expect(got.value).toStrictEqual(reference.data);
            if (!got.ok) expect(got.param?.startsWith("provider")).toBe(true);
            cases++;
          }
        }
      }
    }
    expect(cases).toBe(ids.length * owners.length * kinds.length * extras.length);
  });

  it("refuses what is not an object with a 400 naming the provider", () => {
    for (const input of [null, undefined, "prv_1", 5, [], [{ id: "prv_1", owner: "alice", kind: "openai-compatible" }]]) {
      const got = outcome(() => parseProviderRef(input, "access check"));
      expect(got).toMatchObject({ ok: false });
      expect(providerRefSchema.safeParse(input).success).toBe(false);
    }
  });

  it("returns a copy of the three fields, read once each", () => {
    let reads = 0;
    const input = {
      get id() {
        reads++;
        return reads === 1 ? "prv_1" : "";
      },
      owner: "alice",
      kind: "openai-compatible",
      secret: "not copied",
    };
    expect(parseProviderRef(input, "access check")).toStrictEqual({ id: "prv_1", owner: "alice", kind: "openai-compatible" });
    expect(reads).toBe(1);
  });
});
