import { describe, expect, it } from "vitest";
import type { BudgetLedger, ChargeInput } from "../budget/budget-ledger.js";
import { createManualClock } from "../clock/clock.js";
import { createEventBus } from "../events/sluice-events.js";
import type { RequestEndEvent } from "../events/sluice-events.js";
import type { ProviderStreamBatch } from "../provider/provider.js";
import { countTextTokens } from "../streaming/count-tokens.js";
import { unchecked } from "../testing/expect-gateway-error.js";
import { LeaseRenewer } from "./lease-renewer.js";
import { RequestMeter } from "./request-meter.js";

/** A meter over a ledger that records commits (or fails them), and the request-end events it publishes. */
function meter(options: { failCommits?: boolean } = {}) {
  const commits: ChargeInput[] = [];
  const ledger = unchecked<BudgetLedger>({
    commit: async (input: ChargeInput) => {
      if (options.failCommits === true) throw new Error("the database is gone");
      commits.push(input);
      return { charge: input, duplicate: false };
    },
    release: async () => true,
    renew: async () => null,
  });
  const events = createEventBus();
  const ends: RequestEndEvent[] = [];
  events.on("request-end", (event) => ends.push(event));
  const clock = createManualClock();
  const leases = new LeaseRenewer(ledger, 60_000);
  const reservation = { requestId: "req_1", allocationId: "alc", userId: "u", keyId: null, amount: 5_000, createdAt: 0, expiresAt: 60_000 };
  const requestMeter = new RequestMeter(
    { requestId: "req_1", userId: "u", keyId: null, allocationId: "alc", providerId: "prv", model: "a:b/c", price: { input: 1_000_000, output: 1_000_000 }, reservation },
    { ledger, events, clock, leases },
  );
  return { requestMeter, commits, ends, close: () => leases.close() };
}

describe("RequestMeter.settle", () => {
  it("charges the held worst case when the upstream reports more usage than can be priced", async () => {
    const { requestMeter, commits, close } = meter();
    requestMeter.usage = { inputTokens: 1e18, outputTokens: 1e18, source: "upstream" };
    await expect(requestMeter.settle(async () => 0)).resolves.toBeUndefined();
    expect(commits.map((commit) => commit.cost)).toEqual([5_000]);
    close();
  });

  it("never rejects: a commit that keeps failing is reported as a settlement failure", async () => {
    const { requestMeter, ends, close } = meter({ failCommits: true });
    requestMeter.usage = { inputTokens: 10, outputTokens: 10, source: "upstream" };
    await expect(requestMeter.settle(async () => 0)).resolves.toBeUndefined();
    expect(ends).toMatchObject([{ requestId: "req_1", status: 500, errorCode: "settlement_failed" }]);
    close();
  });

  it("charges the counted prompt of a stream that answered with neither usage nor output, and releases one that never answered", async () => {
    const answered = meter();
    answered.requestMeter.answered = true;
    await answered.requestMeter.settle(async () => 42);
    expect(answered.commits).toMatchObject([{ inputTokens: 42, outputTokens: 0, cost: 42 }]);
    answered.close();

    const unanswered = meter();
    await unanswered.requestMeter.settle(async () => 42);
    expect(unanswered.commits).toEqual([]);
    unanswered.close();
  });

  it("counts the output of a stream without usage with the tokenizer, not by its events", async () => {
    const { requestMeter, commits, close } = meter();
    // One event carrying a whole tool call's arguments (Ollama), and one with a word.
    const toolCall = JSON.stringify({ city: "Paris", units: "metric", days: [1, 2, 3, 4, 5] });
    requestMeter.observe(batch({ outputDeltaEvents: 1, outputText: toolCall }));
    requestMeter.observe(batch({ outputDeltaEvents: 1, outputText: " done" }));
    await requestMeter.settle(async () => 10);
    const expected = await countTextTokens(`${toolCall} done`);
    expect(expected).toBeGreaterThan(2);
    expect(commits).toMatchObject([{ inputTokens: 10, outputTokens: expected }]);
    close();
  });

  it("adds the output that follows the last usage report, which an early or cut-off report leaves out", async () => {
    const { requestMeter, commits, close } = meter();
    requestMeter.observe(batch({ usage: { inputTokens: 12, outputTokens: 0, source: "upstream" } }));
    requestMeter.observe(batch({ outputDeltaEvents: 2, outputText: "Sluice streams" }));
    await requestMeter.settle(async () => 99);
    expect(commits).toMatchObject([{ inputTokens: 12, outputTokens: await countTextTokens("Sluice streams") }]);
    close();
  });

  it("counts a long answer's kept text and scales it to the whole", async () => {
    const { requestMeter, commits, close } = meter();
    const piece = "lorem ipsum dolor sit amet ".repeat(1_000);
    for (let index = 0; index < 20; index++) requestMeter.observe(batch({ outputDeltaEvents: 1, outputText: piece }));
    await requestMeter.settle(async () => 0);
    const perPiece = await countTextTokens(piece);
    // 540,000 characters, of which 262,144 are kept and counted.
    expect(commits[0]!.outputTokens).toBeGreaterThan(perPiece * 19);
    expect(commits[0]!.outputTokens).toBeLessThan(perPiece * 21);
    close();
  });
});

function batch(fields: Partial<ProviderStreamBatch>): ProviderStreamBatch {
  return { text: "", events: [], usage: null, usageOnlySpans: null, outputDeltaEvents: 0, ...fields };
}
