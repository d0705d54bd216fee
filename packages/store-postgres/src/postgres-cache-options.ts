/**
 * How an instance caches its hot-path reads. Pass `cache: false` (or `ttlMs: 0`) to read the
 * database every time; the instance then still announces its own changes to the others.
 */
export interface PostgresCacheOptions {
  /**
   * How long a cached key verification or permission check may be served, in ms (default 1000).
   * Changes made through this instance apply at once and other instances' arrive by NOTIFY
   * within milliseconds; the TTL only bounds staleness while the notification connection is down.
   */
  ttlMs?: number;
  /** Entries kept per cache, least recently used dropped first (default 10,000). */
  maxEntries?: number;
  /** The LISTEN/NOTIFY channel; every instance of one deployment must use the same (default `sluice_invalidate`). */
  channel?: string;
}

export interface ResolvedCacheOptions {
  /** Null when this instance caches nothing. */
  cache: { ttlMs: number; maxEntries: number } | null;
  channel: string;
}

export const DEFAULT_INVALIDATION_CHANNEL = "sluice_invalidate";

export function resolveCacheOptions(options: PostgresCacheOptions | false | undefined): ResolvedCacheOptions {
  if (options === false) return { cache: null, channel: DEFAULT_INVALIDATION_CHANNEL };
  const ttlMs = options?.ttlMs ?? 1_000;
  const maxEntries = options?.maxEntries ?? 10_000;
  const channel = options?.channel ?? DEFAULT_INVALIDATION_CHANNEL;
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 0) {
    throw new RangeError(`cache.ttlMs must be a whole number of milliseconds, got ${ttlMs}`);
  }
  if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
    throw new RangeError(`cache.maxEntries must be a positive whole number, got ${maxEntries}`);
  }
  if (channel.length === 0 || channel.length > 63) {
    throw new RangeError("cache.channel must be 1-63 characters, a PostgreSQL identifier");
  }
  return { cache: ttlMs === 0 ? null : { ttlMs, maxEntries }, channel };
}
