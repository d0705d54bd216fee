import { randomUUID } from "node:crypto";
import pg from "pg";
import type { Queryable } from "./with-transaction.js";

/** What a cache drops when told that something changed. */
export interface InvalidationTarget {
  invalidate(tag: string): void;
  clear(): void;
}

/** The tag that stands for everything: sent when a change touches too much to name (a group deleted). */
export const EVERYTHING = "*";

export interface CacheInvalidationOptions {
  pool: pg.Pool;
  /** The NOTIFY channel every instance of the deployment listens on. */
  channel: string;
  /** False when this instance keeps no cache: it still announces its changes, but does not listen. */
  listen: boolean;
  /** Reconnection delays of the listening connection, doubling from the first to the last. */
  reconnectDelayMs?: { first: number; max: number };
}

/**
 * Keeps the caches of every instance in step with the database.
 *
 * A store that changes something calls `announce` inside the changing transaction (pg_notify, so
 * other instances hear of it only if, and when, it commits) and `applyLocally` after the commit,
 * so its own instance reads its writes at once. Each instance holds one dedicated connection
 * LISTENing on the channel; when it drops, the instance reconnects with backoff and, once
 * listening again, clears its caches, since it may have missed notifications meanwhile. The
 * caches' short TTL bounds staleness while the connection is down.
 */
export interface CacheInvalidation {
  register(target: InvalidationTarget): void;
  announce(client: Queryable, tag: string): Promise<void>;
  applyLocally(tag: string): void;
  close(): Promise<void>;
}

interface Notice {
  instance: string;
  tag: string;
}

export function createCacheInvalidation(options: CacheInvalidationOptions): CacheInvalidation {
  const { pool, channel } = options;
  const delays = options.reconnectDelayMs ?? { first: 100, max: 5_000 };
  /** Names this instance in its notices, so it skips its own (it applied them already). */
  const instance = randomUUID();
  const targets: InvalidationTarget[] = [];
  let closed = false;
  let client: pg.Client | null = null;
  let reconnectTimer: NodeJS.Timeout | null = null;
  let failures = 0;

  function apply(tag: string): void {
    for (const target of targets) {
      if (tag === EVERYTHING) target.clear();
      else target.invalidate(tag);
    }
  }

  function onNotification(message: pg.Notification): void {
    if (message.channel !== channel || message.payload === undefined) return;
    let notice: Notice;
    try {
      notice = JSON.parse(message.payload) as Notice;
    } catch {
      // Not one of ours; something else shares the channel. Drop everything to be safe.
      apply(EVERYTHING);
      return;
    }
    if (notice.instance === instance) return;
    apply(typeof notice.tag === "string" ? notice.tag : EVERYTHING);
  }

  async function connect(): Promise<void> {
    reconnectTimer = null;
    if (closed) return;
    // The listener connects like the pool's own connections, but outside the pool: it holds its
    // connection for the instance's lifetime and must not take a slot from queries.
    // TCP keepalive, so a connection silently dropped by a NAT or proxy is noticed (and the
    // caches cleared) within about a minute, not hours.
    const listener = new pg.Client({ ...pool.options, keepAlive: true, keepAliveInitialDelayMillis: 30_000 });
    client = listener;
    listener.on("notification", onNotification);
    listener.on("error", () => lost(listener));
    listener.on("end", () => lost(listener));
    try {
      await listener.connect();
      await listener.query(`LISTEN ${listener.escapeIdentifier(channel)}`);
    } catch {
      lost(listener);
      return;
    }
    if (closed || client !== listener) return;
    failures = 0;
    // Whatever changed while nobody listened is unknown: start from an empty cache.
    apply(EVERYTHING);
  }

  function lost(listener: pg.Client): void {
    if (client !== listener) return;
    client = null;
    listener.removeAllListeners("notification");
    // Errors after this one have nowhere to go; without a listener they would crash the process.
    listener.on("error", () => undefined);
    listener.end().catch(() => undefined);
    if (closed) return;
    apply(EVERYTHING);
    const delay = Math.min(delays.max, delays.first * 2 ** failures);
    failures += 1;
    // Jitter keeps a fleet of instances from reconnecting in lockstep after a database restart.
    reconnectTimer = setTimeout(() => void connect(), delay * (0.8 + Math.random() * 0.4));
    reconnectTimer.unref();
  }

  if (options.listen) void connect();

  return {
    register(target) {
      targets.push(target);
    },

    async announce(queryable, tag) {
      const notice: Notice = { instance, tag };
      await queryable.query("SELECT pg_notify($1, $2)", [channel, JSON.stringify(notice)]);
    },

    applyLocally(tag) {
      apply(tag);
    },

    async close() {
      if (closed) return;
      closed = true;
      if (reconnectTimer !== null) clearTimeout(reconnectTimer);
      const listener = client;
      client = null;
      if (listener !== null) {
        listener.removeAllListeners();
        listener.on("error", () => undefined);
        await listener.end().catch(() => undefined);
      }
    },
  };
}
