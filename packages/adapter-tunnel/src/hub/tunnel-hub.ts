import { createHash } from "node:crypto";
import type { IncomingMessage, Server as HttpServer } from "node:http";
import type { Server as HttpsServer } from "node:https";
import { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { GatewayError } from "@sluice/core";
import type { OpenAIErrorBody } from "@sluice/core";
import { TUNNEL_NAME_HEADER, TUNNEL_UPGRADE_PROTOCOL } from "../protocol/tunnel-protocol.js";
import { TunnelChangeListeners } from "../tunnel-change-listeners.js";
import type { Tunnel, TunnelDirectory, TunnelRequest, TunnelResponse } from "../tunnel-directory.js";
import { sessionProviderName } from "../tunnel-provider-name.js";
import { TunnelConnection } from "./tunnel-connection.js";
import type { CreatedTunnelToken, TunnelToken, TunnelTokenStore } from "./tunnel-token-store.js";

export interface TunnelHubOptions {
  /** Where agents' tokens are checked; `createMemoryTunnelTokenStore()` keeps them in memory. */
  tokens: TunnelTokenStore;
  /** The path agents connect to (their `--gateway` URL's path). Default `/sluice/tunnel`. */
  path?: string;
  /** How often each connection is checked with an HTTP/2 PING. Default 2 000 ms. */
  heartbeatIntervalMs?: number;
  /** A PING unanswered this long means the connection is dead. Default 3 000 ms. */
  heartbeatTimeoutMs?: number;
  /** Time from the upgrade until the agent's HTTP/2 SETTINGS. Default 10 000 ms. */
  handshakeTimeoutMs?: number;
  /** Connected tunnels one user may have at once; another is refused with a 429. Default 20. */
  maxTunnelsPerUser?: number;
}

/**
 * Sluice's own reverse tunnels, gateway side: agents inside sessions dial out to the hub (an
 * HTTP/1.1 Upgrade at `path`), and the hub carries requests back to them as HTTP/2 streams over
 * that one connection (see protocol/tunnel-protocol.ts). It is the TunnelDirectory of those
 * tunnels: one per (user, session name), `running` while its agent is connected, `stopped` after.
 *
 * The user of a tunnel is always the token's user; the agent only chooses the session name. A new
 * connection for a tunnel that is still connected replaces the old one (an agent restarted before
 * its old connection was found dead); the old agent is told, and stops.
 *
 * Tunnels live in this process's memory: with several gateway processes, each agent is connected
 * to one of them, and requests for it must reach that one.
 */
export interface TunnelHub extends TunnelDirectory {
  readonly path: string;
  readonly tokens: TunnelTokenStore;
  /**
   * The 'upgrade' listener of a node:http or node:https server (Express and Koa run on one).
   * Returns false, leaving the socket alone, for any other path, so other upgrade handlers
   * (WebSockets) can share the server.
   */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /**
   * Adds `handleUpgrade` to a server's 'upgrade' event; returns the function that removes it.
   * Upgrades to other paths are refused with a 404 when no other 'upgrade' listener exists.
   */
  attach(server: HttpServer | HttpsServer): () => void;
  /** A new token for the user; the secret is returned this once. */
  createToken(input: { userId: string; name: string }): Promise<CreatedTunnelToken>;
  listTokens(input: { userId: string; includeRevoked?: boolean }): Promise<TunnelToken[]>;
  /**
   * Revokes the user's token, disconnects the agents connected with it and removes their tunnels
   * (and so their providers). Null when the user has no such token.
   */
  revokeToken(input: { userId: string; tokenId: string }): Promise<TunnelToken | null>;
  /** Removes a stopped tunnel (a session that is gone for good). False when unknown or connected. */
  remove(tunnelId: string): boolean;
}

interface Entry {
  tunnel: Tunnel;
  tokenId: string;
  connection: TunnelConnection | null;
}

/** The tunnel id of a user's session: stable across reconnects, distinct per user. */
export function reverseTunnelId(userId: string, sessionName: string): string {
  return `r${createHash("sha256").update(`${userId}\u0000${sessionName}`).digest("hex").slice(0, 24)}`;
}

export function createTunnelHub(options: TunnelHubOptions): TunnelHub {
  const { tokens } = options;
  const path = normalizePath(options.path ?? "/sluice/tunnel");
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? 2_000;
  const heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? 3_000;
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000;
  const maxTunnelsPerUser = options.maxTunnelsPerUser ?? 20;
  const entries = new Map<string, Entry>();
  /** Connections between the 101 and their first SETTINGS, so close() reaches them too. */
  const pending = new Set<TunnelConnection>();
  const listeners = new TunnelChangeListeners();
  /** Revoked token ids: a connection mid-handshake with one of them is closed when it is ready. */
  const revoked = new Set<string>();
  let closed = false;

  function setStatus(entry: Entry, status: Tunnel["status"]): void {
    if (entry.tunnel.status === status) return;
    entry.tunnel = { ...entry.tunnel, status };
    listeners.emit({ type: "upsert", tunnel: entry.tunnel });
  }

  function connectedCount(userId: string, except: string): number {
    let count = 0;
    for (const [id, entry] of entries) if (id !== except && entry.tunnel.userId === userId && entry.connection !== null) count += 1;
    return count;
  }

  function handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    if (pathnameOf(request.url) !== path) return false;
    // Errors before HTTP/2 takes over (a reset during the handshake) must not crash the host.
    socket.on("error", ignore);
    if (closed) {
      refuse(socket, 503, new GatewayError("provider_unavailable", "The gateway is shutting down; reconnect shortly."));
    } else if (request.method !== "GET" || request.headers.upgrade?.toLowerCase() !== TUNNEL_UPGRADE_PROTOCOL) {
      refuse(socket, 400, new GatewayError("invalid_request", `Connect with 'Upgrade: ${TUNNEL_UPGRADE_PROTOCOL}' (the sluice-tunnel agent does).`), {
        upgrade: TUNNEL_UPGRADE_PROTOCOL,
      });
    } else {
      void accept(request, socket, head).catch(() => socket.destroy());
    }
    return true;
  }

  async function accept(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const token = await tokens.verify(bearer(request.headers.authorization)).catch(() => null);
    if (socket.destroyed) return;
    if (token === null) {
      refuse(socket, 401, new GatewayError("invalid_api_key", "The tunnel token is unknown or has been revoked."));
      return;
    }
    // The agent names its session; the user is the token's, whatever else the agent sends.
    const nameHeader = request.headers[TUNNEL_NAME_HEADER];
    const name = sessionProviderName(typeof nameHeader === "string" && nameHeader.trim() !== "" ? nameHeader.trim() : token.name);
    const tunnelId = reverseTunnelId(token.userId, name);
    if (connectedCount(token.userId, tunnelId) >= maxTunnelsPerUser) {
      refuse(socket, 429, new GatewayError("rate_limit_exceeded", `A user may have at most ${maxTunnelsPerUser} connected tunnels.`));
      return;
    }
    if (closed) {
      refuse(socket, 503, new GatewayError("provider_unavailable", "The gateway is shutting down; reconnect shortly."));
      return;
    }
    void tokens.recordUse({ tokenId: token.id, at: Date.now() }).catch(() => undefined);
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${TUNNEL_UPGRADE_PROTOCOL}\r\n\r\n`,
      // HTTP/2 must not write to a TLS socket while this write is still in flight (Node asserts).
      (error) => {
        if (error || socket.destroyed) return;
        connect({ socket, head, token, tunnelId, name });
      },
    );
  }

  function connect(input: { socket: Duplex; head: Buffer; token: TunnelToken; tunnelId: string; name: string }): void {
    const { token, tunnelId, name } = input;
    if (input.socket instanceof Socket) {
      // Small SSE writes must leave at once, not wait for Nagle; the server's idle timer no longer applies.
      input.socket.setNoDelay(true);
      input.socket.setTimeout(0);
      input.socket.setKeepAlive(true, 10_000);
    }
    const connection: TunnelConnection = new TunnelConnection({
      socket: input.socket,
      head: input.head,
      heartbeatIntervalMs,
      heartbeatTimeoutMs,
      handshakeTimeoutMs,
      onReady() {
        pending.delete(connection);
        if (closed) {
          connection.close("closing");
          return;
        }
        // A token revoked during the handshake must not bring a tunnel up.
        if (revoked.has(token.id)) {
          connection.close("revoked");
          return;
        }
        const entry = entries.get(tunnelId);
        if (entry === undefined) {
          const tunnel: Tunnel = {
            id: tunnelId,
            userId: token.userId,
            sessionId: name,
            name,
            openai: true,
            status: "running",
            target: `sluice-tunnel:${tunnelId}`,
          };
          entries.set(tunnelId, { tunnel, tokenId: token.id, connection });
          listeners.emit({ type: "upsert", tunnel });
          return;
        }
        const previous = entry.connection;
        entry.connection = connection;
        entry.tokenId = token.id;
        // Detached before closing, so its close does not mark the tunnel stopped.
        previous?.close("replaced");
        setStatus(entry, "running");
      },
      onClose() {
        pending.delete(connection);
        const entry = entries.get(tunnelId);
        if (entry === undefined || entry.connection !== connection) return;
        entry.connection = null;
        setStatus(entry, "stopped");
      },
    });
    pending.add(connection);
  }

  function attach(server: HttpServer | HttpsServer): () => void {
    const listener = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
      if (handleUpgrade(request, socket, head)) return;
      // Alone on the server, nobody else will answer this upgrade: say so rather than hang.
      if (server.listenerCount("upgrade") === 1) {
        socket.on("error", ignore);
        refuse(socket, 404, new GatewayError("not_found", `Nothing accepts upgrades at ${pathnameOf(request.url)}.`));
      }
    };
    server.on("upgrade", listener);
    return () => {
      server.off("upgrade", listener);
    };
  }

  return {
    path,
    tokens,
    handleUpgrade,
    attach,

    createToken: (input) => tokens.create(input),
    listTokens: (input) => tokens.list(input),

    async revokeToken(input) {
      const token = await tokens.revoke(input);
      if (token === null) return null;
      revoked.add(token.id);
      for (const [id, entry] of [...entries]) {
        if (entry.tokenId !== token.id) continue;
        entries.delete(id);
        entry.connection?.close("revoked");
        listeners.emit({ type: "remove", tunnel: entry.tunnel });
      }
      return token;
    },

    remove(tunnelId) {
      const entry = entries.get(tunnelId);
      if (entry === undefined || entry.connection !== null) return false;
      entries.delete(tunnelId);
      listeners.emit({ type: "remove", tunnel: entry.tunnel });
      return true;
    },

    list: () => [...entries.values()].map((entry) => ({ ...entry.tunnel })),

    get(id) {
      const entry = entries.get(id);
      return entry === undefined ? null : { ...entry.tunnel };
    },

    onChange: (listener) => listeners.add(listener),

    request(tunnelId: string, request: TunnelRequest): Promise<TunnelResponse> {
      const connection = entries.get(tunnelId)?.connection;
      if (connection === null || connection === undefined || !connection.open) {
        return Promise.reject(new GatewayError("provider_unavailable", "The session tunnel is not connected."));
      }
      return connection.request(request);
    },

    async close() {
      if (closed) return;
      closed = true;
      for (const connection of pending) connection.close("closing");
      pending.clear();
      for (const entry of entries.values()) {
        const connection = entry.connection;
        entry.connection = null;
        connection?.close("closing");
        setStatus(entry, "stopped");
      }
      listeners.clear();
    },
  };
}

/** Answers an upgrade request with an HTTP/1.1 error in OpenAI's shape, and closes the socket. */
function refuse(socket: Duplex, status: number, error: GatewayError, headers: Record<string, string> = {}): void {
  if (socket.destroyed) return;
  const body = JSON.stringify(error.toJSON() satisfies OpenAIErrorBody);
  const lines = [
    `HTTP/1.1 ${status} ${reasonPhrases[status] ?? "Error"}`,
    "Content-Type: application/json",
    `Content-Length: ${Buffer.byteLength(body)}`,
    "Connection: close",
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  socket.end(`${lines.join("\r\n")}\r\n\r\n${body}`);
}

const reasonPhrases: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  404: "Not Found",
  429: "Too Many Requests",
  503: "Service Unavailable",
};

function bearer(authorization: string | undefined): string | null {
  const match = authorization === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  return match === null ? null : match[1]!;
}

function pathnameOf(url: string | undefined): string {
  const target = url ?? "/";
  const query = target.indexOf("?");
  return normalizePath(query === -1 ? target : target.slice(0, query));
}

function normalizePath(path: string): string {
  const withSlash = path.startsWith("/") ? path : `/${path}`;
  return withSlash.length > 1 && withSlash.endsWith("/") ? withSlash.slice(0, -1) : withSlash;
}

function ignore(): void {
  // The socket's fate is decided elsewhere; an error on it needs no handling here.
}
