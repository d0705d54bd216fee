import { LRUCache } from "lru-cache";

export interface TaggedCacheOptions {
  /** How long an entry may be served, in wall-clock ms: the backstop when a notification is lost. */
  ttlMs: number;
  maxEntries: number;
}

/**
 * A per-instance LRU of hot-path reads (key verifications, permission checks), each entry filed
 * under tags (`key:<id>`, `user:<id>`, `provider:<id>`) so that a change drops exactly the
 * entries it could make wrong.
 *
 * A read that started before an invalidation never fills the cache with what it read: every
 * invalidation bumps a generation, and `read` only stores its result when the generation is
 * unchanged. Without that, a check racing a revocation could cache the pre-revocation answer.
 */
export interface TaggedCache<Value> {
  /**
   * The cached value, or `load()`'s, then cached under the tags `tagsOf` names for it (unless an
   * invalidation raced the load).
   */
  read(key: string, load: () => Promise<Value>, tagsOf: (value: Value) => readonly string[]): Promise<Value>;
  /** Changes the cached values filed under `tag` in place, without a reload. */
  update(tag: string, change: (value: Value) => Value): void;
  /** Drops every entry filed under `tag`. */
  invalidate(tag: string): void;
  /** Drops everything. */
  clear(): void;
}

interface Entry<Value> {
  value: Value;
  tags: readonly string[];
}

export function createTaggedCache<Value>(options: TaggedCacheOptions): TaggedCache<Value> {
  const keysByTag = new Map<string, Set<string>>();
  let generation = 0;
  const entries = new LRUCache<string, Entry<Value>>({
    max: options.maxEntries,
    ttl: options.ttlMs,
    // Keep the tag index in step with every way an entry leaves: eviction, expiry, deletion.
    dispose: (entry, key) => {
      for (const tag of entry.tags) {
        const keys = keysByTag.get(tag);
        keys?.delete(key);
        if (keys?.size === 0) keysByTag.delete(tag);
      }
    },
  });

  return {
    async read(key, load, tagsOf) {
      const cached = entries.get(key);
      if (cached !== undefined) return cached.value;
      const startedAt = generation;
      const value = await load();
      if (startedAt === generation) {
        const tags = tagsOf(value);
        entries.set(key, { value, tags });
        for (const tag of tags) {
          let keys = keysByTag.get(tag);
          if (!keys) keysByTag.set(tag, (keys = new Set()));
          keys.add(key);
        }
      }
      return value;
    },

    update(tag, change) {
      for (const key of keysByTag.get(tag) ?? []) {
        const entry = entries.get(key, { updateAgeOnGet: false });
        if (entry !== undefined) entry.value = change(entry.value);
      }
    },

    invalidate(tag) {
      generation += 1;
      for (const key of [...(keysByTag.get(tag) ?? [])]) entries.delete(key);
    },

    clear() {
      generation += 1;
      entries.clear();
    },
  };
}
