import { randomBytes } from "node:crypto";
import { GatewayError, createEventBus, createManualClock, createSecretBox } from "@sluice/core";
import { describe, expect, it } from "vitest";
import { createMemoryProviderCatalog } from "./memory-provider-catalog.js";

// Behaviour of the memory catalog beyond the conformance suite: settings are stored as the JSON a
// database column would hold, and re-sending a secret's current value is no change.

function setup() {
  const events = createEventBus();
  const catalog = createMemoryProviderCatalog({
    secretBox: createSecretBox({ key: randomBytes(32) }),
    clock: createManualClock(),
    events,
  });
  return { catalog, events };
}

describe("memory provider catalog", () => {
  it("stores settings as JSON, as a database column would", async () => {
    const { catalog } = setup();

    const record = await catalog.create({
      kind: "openai-compatible",
      owner: "alice",
      name: "llama",
      settings: { since: new Date(Date.UTC(2026, 0, 5)), dropped: undefined, nested: { port: 8000 } },
    });

    expect(record.settings).toEqual({ since: "2026-01-05T00:00:00.000Z", nested: { port: 8000 } });
  });

  it("refuses settings JSON cannot hold with a 400 naming settings", async () => {
    const { catalog } = setup();
    const circular: Record<string, unknown> = {};
    circular.self = circular;

    const outcome = await catalog
      .create({ kind: "openai-compatible", owner: "alice", name: "llama", settings: circular })
      .catch((error: unknown) => error);

    expect(GatewayError.is(outcome) && { code: outcome.code, param: outcome.param }).toEqual({
      code: "invalid_request",
      param: "settings",
    });
    expect(await catalog.list()).toEqual([]);
  });

  it("treats re-sending a secret's current value, or deleting an absent one, as no change", async () => {
    const { catalog, events } = setup();
    const created = await catalog.create({
      kind: "openai-compatible",
      owner: "alice",
      name: "llama",
      secrets: { apiKey: "sk-upstream" },
    });
    const updates: unknown[] = [];
    events.on("provider-update", (record) => updates.push(record));

    const unchanged = await catalog.update(created.id, { secrets: { apiKey: "sk-upstream", organization: null } });

    expect(unchanged).toEqual(created);
    expect(updates).toEqual([]);
  });
});
