import type { Readable } from "node:stream";

export const tunnelStatuses = ["running", "stopped"] as const;
/** `running`: requests can go through now. `stopped`: the session or its tunnel is down. */
export type TunnelStatus = (typeof tunnelStatuses)[number];

/** One tunnel from the gateway to a server inside a user's compute session. */
export interface Tunnel {
  /** Stable across restarts of the tunnel: 1-100 of `A-Z a-z 0-9 . _ -`. The provider id is `tun_<id>`. */
  id: string;
  /** The user the tunnel belongs to: the provider's owner, and the only user who may use it. */
  userId: string;
  /** The session the tunnel reaches into. */
  sessionId: string;
  /** A display name (the session's name); the provider's name is derived from it once, at creation. */
  name: string;
  /** Whether the server behind the tunnel speaks OpenAI's API: only such tunnels become providers. */
  openai: boolean;
  status: TunnelStatus;
  /**
   * Where requests go. For a host tunnel, the URL of the OpenAI-compatible server as the gateway
   * reaches it (`http://10.0.3.7:8000`, or its `/v1` base). For a reverse tunnel, `sluice-tunnel:<id>`:
   * the agent alone knows the server's address, which never leaves the session.
   */
  target: string;
}

/**
 * A change to one tunnel. `upsert`: it appeared, or its status or details changed. `remove`: it
 * is gone for good (the session was deleted, its token revoked), and so is its provider.
 */
export type TunnelChange = { type: "upsert"; tunnel: Tunnel } | { type: "remove"; tunnel: Tunnel };

/** One HTTP exchange to send through a tunnel: OpenAI paths (`/v1/chat/completions`). */
export interface TunnelRequest {
  method: "GET" | "POST";
  /** The request target on the model server, starting with `/v1/`. */
  path: string;
  /** Lower-case names. The tunnel drops hop-by-hop headers and any `authorization`. */
  headers: Record<string, string>;
  body?: string;
  /** Aborting it cancels the exchange at the model server (the agent closes its request). */
  signal: AbortSignal;
}

export interface TunnelResponse {
  status: number;
  /** Lower-case names, as the model server sent them. */
  headers: Record<string, string | string[] | undefined>;
  /**
   * The response body. The caller must read it to the end or destroy it: destroying it before its
   * end cancels the exchange at the model server.
   */
  body: Readable;
}

/**
 * Where session tunnels come from, and how requests reach them: the one contract both kinds of
 * tunnel implement (`createHostTunnelDirectory` for tunnels the host platform runs itself,
 * `createTunnelHub` for Sluice's own reverse tunnels). `createTunnelProviders` follows it and keeps
 * the provider catalog in step.
 *
 * Semantics:
 * - `list` and `get` answer from memory, synchronously, with copies: the current state, which the
 *   implementation keeps up to date as tunnels start and stop.
 * - Every change is reported to `onChange` listeners, after it took effect (so `get` already
 *   answers with the new state). A listener that throws does not stop the others.
 * - `request` sends one exchange through a `running` tunnel and resolves once the model server's
 *   status and headers arrived, with any status. It rejects with a GatewayError: 503
 *   `provider_unavailable` when the tunnel is unknown or not running, 502 `upstream_error` when the
 *   exchange fails in transit, and `upstream_error` "The request was cancelled." on an abort.
 *   It never sends the gateway's credentials: the model server's own key, if any, is added at the
 *   far end (by the agent, or by the host's tunnel).
 */
export interface TunnelDirectory {
  list(): Tunnel[];
  get(id: string): Tunnel | null;
  /** Subscribes to changes; returns the unsubscribe function. */
  onChange(listener: (change: TunnelChange) => void): () => void;
  request(tunnelId: string, request: TunnelRequest): Promise<TunnelResponse>;
  /** Closes connections and timers. Idempotent. */
  close(): Promise<void>;
}
