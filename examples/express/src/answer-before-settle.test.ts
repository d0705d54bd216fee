/**
 * The client does not wait for the budget's bookkeeping: an answer (whole, or a stream to its
 * `[DONE]` and the end of the response) goes out while its charge is committed, which on
 * PostgreSQL is a round trip. `request-end`, and the charge, follow once the commit lands.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chatBody, holdCommits, postJson, startTestHost } from "./test-host.js";
import type { TestHost } from "./test-host.js";

let host: TestHost;
beforeAll(async () => {
  host = await startTestHost();
});
afterAll(() => host.close());

describe("answers go out before their charge is committed", () => {
  for (const stream of [false, true]) {
    it(`${stream ? "a stream, to its end" : "a whole answer"}, with request-end and the charge once the commit lands`, async () => {
      const ledger = host.sluice.stores.ledger;
      const held = holdCommits(ledger);
      try {
        const reply = await postJson(host, "/chat/completions", chatBody({ max_tokens: 16, stream }), host.keys.carol);
        expect(reply.status).toBe(200);
        if (stream) expect(reply.text.endsWith("data: [DONE]\n\n")).toBe(true);
        else expect(JSON.parse(reply.text).choices[0].message.content.length).toBeGreaterThan(0);
        const requestId = reply.headers["x-request-id"] as string;
        // The whole response arrived while the commit was still held.
        expect(host.ends.has(requestId)).toBe(false);
        expect(await ledger.getCharge(requestId)).toBeNull();

        held.release();
        expect((await host.waitForEnd(requestId)).outcome).toBe("completed");
        expect((await ledger.getCharge(requestId))?.cost).toBeGreaterThan(0);
        expect((await host.allocation()).reserved).toBe(0);
      } finally {
        held.restore();
      }
    });
  }
});
