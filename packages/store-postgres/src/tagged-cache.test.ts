import { describe, expect, it } from "vitest";
import { createTaggedCache } from "./tagged-cache.js";

describe("createTaggedCache", () => {
  it("serves a cached value until its tag is invalidated", async () => {
    const cache = createTaggedCache<string>({ ttlMs: 60_000, maxEntries: 10 });
    let loads = 0;
    const load = async (): Promise<string> => `value-${++loads}`;

    expect(await cache.read("a", load, () => ["tag"])).toBe("value-1");
    expect(await cache.read("a", load, () => ["tag"])).toBe("value-1");
    cache.invalidate("other");
    expect(await cache.read("a", load, () => ["tag"])).toBe("value-1");
    cache.invalidate("tag");
    expect(await cache.read("a", load, () => ["tag"])).toBe("value-2");
  });

  it("does not keep what a read loaded while an invalidation happened", async () => {
    const cache = createTaggedCache<string>({ ttlMs: 60_000, maxEntries: 10 });
    let release = (): void => {};
    const slow = cache.read(
      "a",
      () => new Promise<string>((resolve) => (release = () => resolve("before the change"))),
      () => ["tag"],
    );

    cache.invalidate("tag");
    release();

    expect(await slow).toBe("before the change");
    expect(await cache.read("a", async () => "after the change", () => ["tag"])).toBe("after the change");
  });

  it("updates the values filed under a tag in place", async () => {
    const cache = createTaggedCache<number>({ ttlMs: 60_000, maxEntries: 10 });
    await cache.read("a", async () => 1, () => ["tag"]);
    await cache.read("b", async () => 10, () => ["tag", "other"]);

    cache.update("tag", (value) => value + 1);

    expect(await cache.read("a", async () => 0, () => [])).toBe(2);
    expect(await cache.read("b", async () => 0, () => [])).toBe(11);
  });

  it("forgets entries past their TTL, and everything on clear", async () => {
    const cache = createTaggedCache<string>({ ttlMs: 20, maxEntries: 10 });
    await cache.read("a", async () => "first", () => []);
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(await cache.read("a", async () => "second", () => [])).toBe("second");

    cache.clear();

    expect(await cache.read("a", async () => "third", () => [])).toBe("third");
  });
});
