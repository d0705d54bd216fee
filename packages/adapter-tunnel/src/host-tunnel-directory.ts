import { GatewayError } from "@sluice/core";
import { Pool } from "undici";
import { parseTunnel, parseTunnelId, parseTunnelStatus } from "./parse-tunnel.js";
import type { TunnelInput } from "./parse-tunnel.js";
import { forwardableHeaders } from "./protocol/tunnel-protocol.js";
import { TunnelChangeListeners } from "./tunnel-change-listeners.js";
import type { Tunnel, TunnelChange, TunnelDirectory, TunnelRequest, TunnelResponse, TunnelStatus } from "./tunnel-directory.js";
import { cancelledError } from "./tunnel-errors.js";

export type { TunnelInput } from "./parse-tunnel.js";

export interface HostTunnelDirectoryOptions {
  /** Keep-alive connections per tunnel target. Default 128. */
  connections?: number;
  /** Time allowed to open a connection to a target. Default 10 000 ms. */
  connectTimeoutMs?: number;
}

/**
 * A TunnelDirectory for hosts that run tunnels themselves: the host reports each tunnel as it
 * starts, stops and goes away, and requests go to the tunnel's `target` URL over an undici Pool.
 */
export interface HostTunnelDirectory extends TunnelDirectory {
  /**
   * Adds a tunnel or replaces what is known of it, and returns it. Validates the input (400
   * naming the field). Emits an `upsert` change when anything differs from before.
   */
  upsert(tunnel: TunnelInput): Tunnel;
  /** Sets a known tunnel's status; 404 `not_found` for an unknown id. Emits when it changed. */
  setStatus(id: string, status: TunnelStatus): Tunnel;
  /** Forgets a tunnel (its provider goes too). Returns false when it was unknown. */
  remove(id: string): boolean;
}

interface Entry {
  tunnel: Tunnel;
  pool: Pool;
  /** The target's path before `/v1`, without a trailing slash: requests go to `${prefix}/v1/...`. */
  prefix: string;
}

export function createHostTunnelDirectory(options: HostTunnelDirectoryOptions = {}): HostTunnelDirectory {
  const connections = options.connections ?? 128;
  const connectTimeout = options.connectTimeoutMs ?? 10_000;
  const entries = new Map<string, Entry>();
  const listeners = new TunnelChangeListeners();
  let closed = false;

  function createPool(target: URL): Pool {
    // No header or body timers: the gateway bounds every request through its AbortSignal.
    return new Pool(target.origin, { connections, connectTimeout, headersTimeout: 0, bodyTimeout: 0 });
  }

  function emit(change: TunnelChange): void {
    listeners.emit(change);
  }

  function assertOpen(): void {
    if (closed) throw new GatewayError("provider_unavailable", "This tunnel directory has been closed.");
  }

  return {
    upsert(input) {
      assertOpen();
      const tunnel = parseTunnel(input);
      const before = entries.get(tunnel.id);
      const target = new URL(tunnel.target);
      if (before !== undefined && sameTunnel(before.tunnel, tunnel)) return { ...tunnel };
      let pool: Pool;
      if (before !== undefined && new URL(before.tunnel.target).origin === target.origin) {
        pool = before.pool;
      } else {
        if (before !== undefined) void before.pool.close().catch(() => undefined);
        pool = createPool(target);
      }
      entries.set(tunnel.id, { tunnel, pool, prefix: target.pathname.replace(/\/+$/, "").replace(/\/v1$/, "") });
      emit({ type: "upsert", tunnel });
      return { ...tunnel };
    },

    setStatus(id, status) {
      assertOpen();
      const entry = entries.get(parseTunnelId(id));
      const next = parseTunnelStatus(status);
      if (entry === undefined) throw new GatewayError("not_found", `No tunnel has the id '${id}'.`, { param: "id" });
      if (entry.tunnel.status !== next) {
        entry.tunnel = { ...entry.tunnel, status: next };
        emit({ type: "upsert", tunnel: entry.tunnel });
      }
      return { ...entry.tunnel };
    },

    remove(id) {
      const entry = entries.get(id);
      if (entry === undefined) return false;
      entries.delete(id);
      void entry.pool.close().catch(() => undefined);
      emit({ type: "remove", tunnel: entry.tunnel });
      return true;
    },

    list: () => [...entries.values()].map((entry) => ({ ...entry.tunnel })),

    get(id) {
      const entry = entries.get(id);
      return entry === undefined ? null : { ...entry.tunnel };
    },

    onChange: (listener) => listeners.add(listener),

    async request(tunnelId: string, request: TunnelRequest): Promise<TunnelResponse> {
      const entry = entries.get(tunnelId);
      if (closed || entry === undefined || entry.tunnel.status !== "running") {
        throw new GatewayError("provider_unavailable", "The session tunnel is not running.");
      }
      if (request.signal.aborted) throw cancelledError(request.signal.reason);
      try {
        const response = await entry.pool.request({
          path: `${entry.prefix}${request.path}`,
          method: request.method,
          headers: forwardableHeaders(request.headers),
          body: request.body,
          signal: request.signal,
        });
        return { status: response.statusCode, headers: response.headers, body: response.body };
      } catch (error) {
        if (request.signal.aborted) throw cancelledError(error);
        throw new GatewayError("upstream_error", `The session's model server could not be reached through its tunnel (${failureName(error)}).`, {
          cause: error,
        });
      }
    },

    async close() {
      if (closed) return;
      closed = true;
      listeners.clear();
      const pools = [...entries.values()].map((entry) => entry.pool);
      entries.clear();
      await Promise.all(pools.map((pool) => pool.close().catch(() => undefined)));
    },
  };
}

function sameTunnel(a: Tunnel, b: Tunnel): boolean {
  return (
    a.userId === b.userId &&
    a.sessionId === b.sessionId &&
    a.name === b.name &&
    a.openai === b.openai &&
    a.status === b.status &&
    a.target === b.target
  );
}

/** What went wrong, by its error code, without naming the host. */
function failureName(error: unknown): string {
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  switch (code) {
    case "ECONNREFUSED":
      return "connection refused";
    case "ECONNRESET":
    case "UND_ERR_SOCKET":
      return "connection reset";
    case "UND_ERR_CONNECT_TIMEOUT":
    case "ETIMEDOUT":
      return "connection timed out";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "host name not resolved";
    default:
      return "connection failed";
  }
}
