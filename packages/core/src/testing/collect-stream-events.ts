import { expect } from "vitest";
import type { ProviderStreamBatch, ProviderStreamEvent } from "../provider/provider.js";

/**
 * Every event of a stream's batches, in order, read to the end (or to the failure, which it
 * throws). Fails the test on a batch that breaks the ProviderStream contract: an empty one, or
 * one whose text, usage or usage-only spans disagree with its events.
 */
export async function collectStreamEvents(batches: AsyncIterable<ProviderStreamBatch>): Promise<ProviderStreamEvent[]> {
  const events: ProviderStreamEvent[] = [];
  for await (const batch of batches) {
    expect(batch.events.length, "a stream yielded an empty batch").toBeGreaterThan(0);
    expectConsistentBatch(batch);
    events.push(...batch.events);
  }
  return events;
}

/** A batch's text is its events framed as SSE, and its usage is the last its events report. */
export function expectConsistentBatch(batch: ProviderStreamBatch): void {
  const framed = batch.events.map((event) => `data: ${event.data.replaceAll("\n", "\ndata: ")}\n\n`);
  expect(batch.text, "a batch's text is its events, framed").toBe(framed.join(""));
  const usages = batch.events.filter((event) => event.usage !== undefined);
  expect(batch.usage, "a batch's usage is the last its events report").toEqual(usages.at(-1)?.usage ?? null);
  const spans: number[] = [];
  let offset = 0;
  batch.events.forEach((event, index) => {
    const length = framed[index]!.length;
    if (event.usageOnly === true) spans.push(offset, offset + length);
    offset += length;
  });
  expect(batch.usageOnlySpans ?? [], "a batch's usage-only spans are where its usage-only events are").toEqual(spans);
}
