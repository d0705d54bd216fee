import { createManualClock } from "@sluice/core";
import { describe, expect, it } from "vitest";
import { TUNNEL_TOKEN_PREFIX, createMemoryTunnelTokenStore, hashTunnelTokenSecret, looksLikeTunnelTokenSecret } from "./tunnel-token-store.js";

describe("createMemoryTunnelTokenStore", () => {
  it("returns the secret once, keeps only its hash, and verifies it to the token's user", async () => {
    const clock = createManualClock();
    const store = createMemoryTunnelTokenStore({ clock });
    const { token, secret } = await store.create({ userId: "alice", name: "  laptop  " });
    expect(looksLikeTunnelTokenSecret(secret)).toBe(true);
    expect(secret.startsWith(TUNNEL_TOKEN_PREFIX)).toBe(true);
    expect(token).toMatchObject({ userId: "alice", name: "laptop", hint: `${TUNNEL_TOKEN_PREFIX}…${secret.slice(-4)}`, revokedAt: null });
    expect(JSON.stringify(await store.list({ userId: "alice" }))).not.toContain(secret);
    expect(JSON.stringify(await store.list({ userId: "alice" }))).not.toContain(hashTunnelTokenSecret(secret));
    expect((await store.verify(secret))?.userId).toBe("alice");
  });

  it("verifies nothing for junk, never throwing", async () => {
    const store = createMemoryTunnelTokenStore();
    const { secret } = await store.create({ userId: "alice", name: "laptop" });
    for (const junk of [undefined, null, 42, {}, "", secret.slice(0, -1), `${secret}x`, secret.replace(TUNNEL_TOKEN_PREFIX, "sk-sluice-")]) {
      expect(await store.verify(junk)).toBeNull();
    }
  });

  it("scopes list and revoke to the user; revoke is idempotent and keeps the first time", async () => {
    const clock = createManualClock();
    const store = createMemoryTunnelTokenStore({ clock });
    const { token, secret } = await store.create({ userId: "alice", name: "laptop" });
    expect(await store.list({ userId: "bob" })).toEqual([]);
    expect(await store.revoke({ userId: "bob", tokenId: token.id })).toBeNull();
    expect(await store.verify(secret)).not.toBeNull();
    const revokedAt = clock.now();
    expect((await store.revoke({ userId: "alice", tokenId: token.id }))?.revokedAt).toBe(revokedAt);
    clock.advance(1_000);
    expect((await store.revoke({ userId: "alice", tokenId: token.id }))?.revokedAt).toBe(revokedAt);
    expect(await store.verify(secret)).toBeNull();
    expect(await store.list({ userId: "alice" })).toEqual([]);
    expect(await store.list({ userId: "alice", includeRevoked: true })).toHaveLength(1);
  });

  it("validates its input", async () => {
    const store = createMemoryTunnelTokenStore();
    await expect(store.create({ userId: "a:b", name: "x" })).rejects.toMatchObject({ status: 400, param: "userId" });
    await expect(store.create({ userId: "alice", name: " " })).rejects.toMatchObject({ status: 400, param: "name" });
    await expect(store.create({ userId: "alice", name: "a\nb" })).rejects.toMatchObject({ status: 400, param: "name" });
  });

  it("records use", async () => {
    const store = createMemoryTunnelTokenStore();
    const { token } = await store.create({ userId: "alice", name: "laptop" });
    await store.recordUse({ tokenId: token.id, at: 5_000 });
    await store.recordUse({ tokenId: token.id, at: 4_000 });
    await store.recordUse({ tokenId: "ttk_unknown", at: 4_000 });
    expect((await store.list({ userId: "alice" }))[0]?.lastUsedAt).toBe(5_000);
  });
});
