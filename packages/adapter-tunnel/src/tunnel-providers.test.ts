/**
 * How the catalog follows a directory: record per OpenAI tunnel, stable names and ids, ownership
 * and status that follow the tunnel, and what happens around restarts and failures.
 */
import { randomBytes } from "node:crypto";
import { GatewayError, createSecretBox } from "@sluice/core";
import type { ProviderCatalog } from "@sluice/core";
import { createMemoryProviderCatalog } from "@sluice/store-memory";
import { afterEach, describe, expect, it } from "vitest";
import { createHostTunnelDirectory } from "./host-tunnel-directory.js";
import type { HostTunnelDirectory } from "./host-tunnel-directory.js";
import { createTunnelProviders } from "./tunnel-providers.js";
import type { TunnelProviders } from "./tunnel-providers.js";
import { fallbackProviderName, sessionProviderName, tunnelIdOfProvider, tunnelProviderId } from "./tunnel-provider-name.js";

const target = "http://127.0.0.1:9";
const base = { userId: "alice", sessionId: "sess-1", name: "notebook", openai: true, status: "running", target } as const;

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((each) => each.close()));
});

function setup(catalog: ProviderCatalog = createMemoryProviderCatalog({ secretBox: createSecretBox({ key: randomBytes(32) }) })): {
  catalog: ProviderCatalog;
  directory: HostTunnelDirectory;
  follow(options?: { onError?: (error: unknown, tunnelId: string) => void }): TunnelProviders;
} {
  const directory = createHostTunnelDirectory();
  open.push(directory);
  return {
    catalog,
    directory,
    follow(options = {}) {
      const tunnels = createTunnelProviders({ catalog, directory, ...options });
      open.push(tunnels);
      return tunnels;
    },
  };
}

describe("tunnel provider names", () => {
  it("derives valid, stable provider names from session names", () => {
    expect(sessionProviderName("notebook")).toBe("notebook");
    expect(sessionProviderName("alice's notebook #2")).toBe("alice-s-notebook-2");
    expect(sessionProviderName("--Ünïcode session--")).toBe("Unicode-session");
    expect(sessionProviderName("...")).toBe("tunnel");
    expect(sessionProviderName("x".repeat(100))).toHaveLength(63);
    const fallback = fallbackProviderName("y".repeat(63), "t1");
    expect(fallback).toMatch(/^y{56}-[0-9a-f]{6}$/);
    expect(fallbackProviderName("notebook", "t1")).toBe(fallbackProviderName("notebook", "t1"));
    expect(tunnelIdOfProvider(tunnelProviderId("abc"))).toBe("abc");
    expect(tunnelIdOfProvider("prv_abc")).toBeNull();
  });
});

describe("createTunnelProviders", () => {
  it("creates records for the tunnels a directory already knows, then follows its changes", async () => {
    const { catalog, directory, follow } = setup();
    directory.upsert({ ...base, id: "t1" });
    directory.upsert({ ...base, id: "t2", name: "other", status: "stopped" });
    directory.upsert({ ...base, id: "t3", name: "plain", openai: false });
    const tunnels = follow();
    await tunnels.ready;
    expect((await catalog.list({ kind: "openai-tunnel" })).map((record) => [record.id, record.name, record.status])).toEqual([
      ["tun_t1", "notebook", "running"],
      ["tun_t2", "other", "stopped"],
    ]);
    directory.setStatus("t1", "stopped");
    await tunnels.settled();
    expect(await catalog.get("tun_t1")).toMatchObject({ status: "stopped", statusReason: expect.stringMatching(/restart/) as unknown });
  });

  it("collapses a burst of changes to one tunnel into writes of its latest state", async () => {
    const { catalog, directory, follow } = setup();
    const tunnels = follow();
    await tunnels.ready;
    directory.upsert({ ...base, id: "t1" });
    for (let round = 0; round < 20; round++) directory.setStatus("t1", round % 2 === 0 ? "stopped" : "running");
    await tunnels.settled();
    const record = await catalog.get("tun_t1");
    expect(record?.status).toBe("running");
    expect(record?.version).toBeLessThanOrEqual(3);
  });

  it("takes a stable fallback name when the owner already has a provider of that name", async () => {
    const { catalog, directory, follow } = setup();
    await catalog.create({ kind: "openai-compatible", owner: "alice", name: "notebook", settings: {} });
    await catalog.create({ kind: "openai-compatible", owner: "bob", name: "shared", settings: {} });
    directory.upsert({ ...base, id: "t1" });
    directory.upsert({ ...base, id: "t2", userId: "bob", name: "notebook" });
    await follow().ready;
    expect((await catalog.get("tun_t1"))?.name).toBe(fallbackProviderName("notebook", "t1"));
    expect((await catalog.get("tun_t2"))?.name).toBe("notebook");
  });

  it("gives the record to the tunnel's new user when the tunnel changes hands", async () => {
    const { catalog, directory, follow } = setup();
    const tunnels = follow();
    directory.upsert({ ...base, id: "t1" });
    await tunnels.settled();
    directory.upsert({ ...base, id: "t1", userId: "bob" });
    await tunnels.settled();
    expect(await catalog.get("tun_t1")).toMatchObject({ owner: "bob", status: "running" });
    expect(await catalog.list({ owner: "alice" })).toEqual([]);
  });

  it("marks stopped, after a restart, the tunnel providers the directory does not know (yet)", async () => {
    const { catalog, directory, follow } = setup();
    await catalog.create({ id: "tun_gone", kind: "openai-tunnel", owner: "alice", name: "gone", status: "running", settings: { tunnelId: "gone" } });
    const tunnels = follow();
    await tunnels.ready;
    expect((await catalog.get("tun_gone"))?.status).toBe("stopped");
    directory.upsert({ ...base, id: "gone", name: "gone" });
    await tunnels.settled();
    expect(await catalog.get("tun_gone")).toMatchObject({ status: "running", name: "gone" });
  });

  it("reports catalog failures to onError and recovers on the next sync", async () => {
    const real = createMemoryProviderCatalog({ secretBox: createSecretBox({ key: randomBytes(32) }) });
    let failing = true;
    const flaky: ProviderCatalog = {
      ...real,
      create: (input) => (failing ? Promise.reject(new Error("store down")) : real.create(input)),
      get: (id) => real.get(id),
      list: (filter) => real.list(filter),
    };
    const { directory, follow } = setup(flaky);
    const errors: Array<[string, string]> = [];
    const tunnels = follow({ onError: (error, tunnelId) => errors.push([String((error as Error).message), tunnelId]) });
    directory.upsert({ ...base, id: "t1" });
    await tunnels.settled();
    expect(errors).toEqual([["store down", "t1"]]);
    failing = false;
    await tunnels.sync();
    expect((await real.get("tun_t1"))?.status).toBe("running");
  });

  it("refuses a provider id taken by another kind, without touching it", async () => {
    const { catalog, directory, follow } = setup();
    await catalog.create({ id: "tun_t1", kind: "openai-compatible", owner: "alice", name: "squatter", settings: {} });
    const errors: unknown[] = [];
    const tunnels = follow({ onError: (error) => errors.push(error) });
    directory.upsert({ ...base, id: "t1" });
    await tunnels.settled();
    expect(GatewayError.is(errors[0]) && errors[0].code).toBe("conflict");
    expect((await catalog.get("tun_t1"))?.kind).toBe("openai-compatible");
  });

  it("stops following once closed", async () => {
    const { catalog, directory, follow } = setup();
    const tunnels = follow();
    await tunnels.close();
    directory.upsert({ ...base, id: "t1" });
    await tunnels.settled();
    expect(await catalog.get("tun_t1")).toBeNull();
  });
});
