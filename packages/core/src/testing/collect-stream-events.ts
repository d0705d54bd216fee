import { expect } from "vitest";
import type { ProviderStreamEvent } from "../provider/provider.js";

/**
 * Every event of a stream's batches, in order, read to the end (or to the failure, which it
 * throws). Fails the test on an empty batch, which the ProviderStream contract rules out.
 */
export async function collectStreamEvents(batches: AsyncIterable<readonly ProviderStreamEvent[]>): Promise<ProviderStreamEvent[]> {
  const events: ProviderStreamEvent[] = [];
  for await (const batch of batches) {
    expect(batch.length, "a stream yielded an empty batch").toBeGreaterThan(0);
    events.push(...batch);
  }
  return events;
}
