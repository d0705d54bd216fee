/**
 * A running request keeps its reservation: the gateway renews it every half lease, so a stream
 * that outlives the lease still holds its worst case against the allocation, while the holds of
 * an instance that died lapse after one lease (proven across processes in store-postgres).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chatBody, postJson, startTestHost } from "./test-host.js";
import type { TestHost } from "./test-host.js";

const leaseMs = 200;
const realTick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let host: TestHost;
beforeAll(async () => {
  host = await startTestHost({ gateway: { reservationLeaseMs: leaseMs, sweepIntervalMs: 0 } });
});
afterAll(() => host.close());

describe("a request that outlives its reservation's lease", () => {
  it("keeps its worst case held for as long as it runs, then settles", async () => {
    const reply = postJson(host, "/chat/completions", chatBody({ stream: true, max_tokens: 16 }, { gate: "lease", chunks: 2 }), host.keys.carol);
    await host.upstream.waitForRequest(0, 5_000);
    const held = (await host.allocation()).reserved;
    expect(held).toBeGreaterThan(0);

    // Five leases pass on the ledger's clock. Between steps, real time lets a renewal run.
    for (let step = 0; step < 10; step++) {
      await realTick(leaseMs / 2 + 30);
      host.clock.advance(leaseMs / 2);
      expect((await host.allocation()).reserved).toBe(held);
    }

    host.upstream.openGate("lease");
    const answer = await reply;
    expect(answer.status).toBe(200);
    await host.waitForEnd(answer.headers["x-request-id"] as string);
    const after = await host.allocation();
    expect(after.reserved).toBe(0);
    expect(after.spent).toBeGreaterThan(0);
  });
});
