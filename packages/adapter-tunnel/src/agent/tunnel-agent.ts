import http from "node:http";
import http2 from "node:http2";
import type { ServerHttp2Session } from "node:http2";
import https from "node:https";
import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import { TLSSocket } from "node:tls";
import { TUNNEL_AGENT_HEADER, TUNNEL_NAME_HEADER, TUNNEL_UPGRADE_PROTOCOL, tunnelCloseReasons } from "../protocol/tunnel-protocol.js";
import type { TunnelCloseReason } from "../protocol/tunnel-protocol.js";
import { createAgentProxy } from "./agent-proxy.js";
import { reconnectDelay } from "./reconnect-backoff.js";

export interface TunnelAgentOptions {
  /** The hub's URL on the gateway, `https://gateway.example/sluice/tunnel` (http for loopback and tests). */
  gateway: string | URL;
  /** The user's tunnel token (`st-sluice-...`). */
  token: string;
  /** The model server's base URL inside the session, e.g. `http://127.0.0.1:8000`. */
  target: string | URL;
  /** The model server's own API key, if it wants one: added here, never sent to the gateway. */
  targetApiKey?: string;
  /** The session's name, which names the provider; the token's name when absent. */
  name?: string;
  /** Extra CA certificates (PEM) to trust for an https gateway. */
  ca?: string | Buffer;
  heartbeatIntervalMs?: number;
  heartbeatTimeoutMs?: number;
  /** First reconnect wait; it doubles per failed attempt, with jitter. Default 500 ms. */
  reconnectInitialMs?: number;
  /** Longest reconnect wait. Default 30 000 ms. */
  reconnectMaxMs?: number;
  /** Requests the tunnel carries at once. Default 1 000. */
  maxConcurrentRequests?: number;
  /** Keep-alive connections to the model server. Default 256. */
  connections?: number;
  /** Told about each step, for the CLI to print; library code does not log. */
  onEvent?: (event: TunnelAgentEvent) => void;
}

export type TunnelAgentEvent =
  | { type: "connecting"; attempt: number }
  | { type: "connected" }
  | { type: "disconnected"; reason: string; retryInMs: number }
  | { type: "stopped"; reason: TunnelAgentStopReason; message: string };

/**
 * Why an agent stopped for good: `closed` by its owner (a signal), `unauthorized` (a bad or revoked
 * token), `rejected` (the gateway refused the protocol), `replaced` (another agent took this
 * session over), `revoked` (the token was revoked while connected).
 */
export type TunnelAgentStopReason = "closed" | "unauthorized" | "rejected" | "replaced" | "revoked";

export interface TunnelAgent {
  /** Resolves when the agent stops for good, with why. */
  readonly stopped: Promise<{ reason: TunnelAgentStopReason; message: string }>;
  /** Whether a tunnel connection is up now. */
  readonly connected: boolean;
  /** Disconnects (requests in flight get `graceMs` to finish) and stops reconnecting. Idempotent. */
  close(options?: { graceMs?: number }): Promise<void>;
}

type Outcome =
  | { kind: "refused"; status: number; message: string }
  | { kind: "failed"; message: string }
  | { kind: "ended"; reason: TunnelCloseReason | null; upMs: number };

/** A connection that stayed up this long resets the backoff. */
const stableAfterMs = 10_000;
const connectTimeoutMs = 15_000;

/**
 * Runs the session side of a reverse tunnel: dials out to the gateway's hub (HTTP/1.1 Upgrade over
 * http or https, so it passes firewalls and opens no port), serves the HTTP/2 requests that come
 * back through that connection by forwarding them to the model server, PINGs the hub to notice a
 * dead connection, and reconnects with exponential backoff and jitter until closed.
 */
export function startTunnelAgent(options: TunnelAgentOptions): TunnelAgent {
  const gateway = new URL(options.gateway);
  if (gateway.protocol !== "http:" && gateway.protocol !== "https:") throw new TypeError("The gateway URL must be http(s).");
  const target = new URL(options.target);
  if (target.protocol !== "http:" && target.protocol !== "https:") throw new TypeError("The target URL must be http(s).");
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? 2_000;
  const heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? 3_000;
  const initialMs = options.reconnectInitialMs ?? 500;
  const maxMs = options.reconnectMaxMs ?? 30_000;
  const proxy = createAgentProxy({
    target,
    ...(options.targetApiKey === undefined ? {} : { targetApiKey: options.targetApiKey }),
    connections: options.connections ?? 256,
    connectTimeoutMs: 10_000,
    maxBodyBytes: 64 * 1024 * 1024,
  });

  let closing = false;
  let session: ServerHttp2Session | null = null;
  let dialing: http.ClientRequest | null = null;
  let wake: (() => void) | null = null;
  let resolveStopped!: (value: { reason: TunnelAgentStopReason; message: string }) => void;
  const stopped = new Promise<{ reason: TunnelAgentStopReason; message: string }>((resolve) => {
    resolveStopped = resolve;
  });

  const emit = (event: TunnelAgentEvent): void => {
    try {
      options.onEvent?.(event);
    } catch {
      // A failing observer must not stop the tunnel.
    }
  };

  function dial(): Promise<Outcome> {
    return new Promise((resolve) => {
      const headers: Record<string, string> = {
        connection: "Upgrade",
        upgrade: TUNNEL_UPGRADE_PROTOCOL,
        authorization: `Bearer ${options.token}`,
        [TUNNEL_AGENT_HEADER]: `${TUNNEL_UPGRADE_PROTOCOL} node/${process.versions.node}`,
      };
      if (options.name !== undefined) headers[TUNNEL_NAME_HEADER] = options.name;
      const client = gateway.protocol === "https:" ? https : http;
      const request = client.request(gateway, {
        method: "GET",
        headers,
        agent: false,
        timeout: connectTimeoutMs,
        ...(options.ca === undefined ? {} : { ca: options.ca }),
      });
      dialing = request;
      let settled = false;
      const settle = (outcome: Outcome): void => {
        if (dialing === request) dialing = null;
        if (settled) return;
        settled = true;
        resolve(outcome);
      };
      request.on("timeout", () => request.destroy(new Error("the gateway did not answer in time")));
      request.on("error", (error) => settle({ kind: "failed", message: error.message }));
      request.on("response", (response) => {
        void readMessage(response).then((message) => settle({ kind: "refused", status: response.statusCode ?? 0, message }));
      });
      request.on("upgrade", (response, socket, head) => {
        if (dialing === request) dialing = null;
        if (closing) {
          socket.destroy();
          settle({ kind: "failed", message: "closed" });
          return;
        }
        if (response.headers.upgrade?.toLowerCase() !== TUNNEL_UPGRADE_PROTOCOL) {
          socket.destroy();
          settle({ kind: "refused", status: 400, message: "The gateway switched to another protocol." });
          return;
        }
        void serve(socket, head).then(settle);
      });
      request.end();
    });
  }

  /** Runs the HTTP/2 server side over the upgraded socket until the connection ends. */
  function serve(socket: Socket, head: Buffer): Promise<Outcome> {
    socket.setTimeout(0);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    // Node's HTTP/2 server falls back to HTTP/1.1 on a TLS socket that did not negotiate h2 by
    // ALPN; this one speaks h2 by the Upgrade instead, which ALPN cannot know about.
    if (socket instanceof TLSSocket && socket.alpnProtocol !== "h2") (socket as { alpnProtocol: string | false | null }).alpnProtocol = "h2";
    if (head.length > 0) socket.unshift(head);
    // The hub never half-closes: its end is the connection's end, whatever HTTP/2 makes of it.
    socket.once("end", () => socket.destroy());
    const server = http2.createServer({
      settings: { maxConcurrentStreams: options.maxConcurrentRequests ?? 1_000, initialWindowSize: 1024 * 1024, enablePush: false },
      maxSessionMemory: 64,
    });
    server.on("stream", (stream, streamHeaders) => proxy.handle(stream, streamHeaders));
    return new Promise((resolve) => {
      const startedAt = Date.now();
      let reason: TunnelCloseReason | null = null;
      let heartbeat: NodeJS.Timeout | null = null;
      let pingTimer: NodeJS.Timeout | null = null;
      server.once("session", (current: ServerHttp2Session) => {
        session = current;
        current.on("error", ignore);
        current.on("goaway", (_code: number, _lastStreamId: number, opaque?: Buffer) => {
          const said = opaque?.toString("utf8") ?? "";
          reason = (tunnelCloseReasons as readonly string[]).includes(said) ? (said as TunnelCloseReason) : "closing";
        });
        current.once("remoteSettings", () => {
          try {
            current.setLocalWindowSize(32 * 1024 * 1024);
          } catch {
            // Only a larger window is lost; flow control still works.
          }
          emit({ type: "connected" });
        });
        current.once("close", () => {
          if (heartbeat !== null) clearInterval(heartbeat);
          if (pingTimer !== null) clearTimeout(pingTimer);
          if (session === current) session = null;
          resolve({ kind: "ended", reason, upMs: Date.now() - startedAt });
        });
        heartbeat = setInterval(() => {
          if (pingTimer !== null || current.destroyed) return;
          const timer = setTimeout(() => current.destroy(), heartbeatTimeoutMs);
          pingTimer = timer;
          const answered = (error: Error | null): void => {
            clearTimeout(timer);
            pingTimer = null;
            if (error !== null) current.destroy();
          };
          try {
            if (!current.ping(answered)) answered(new Error("too many unanswered pings"));
          } catch (error) {
            answered(error instanceof Error ? error : new Error(String(error)));
          }
        }, heartbeatIntervalMs);
      });
      // Should the session never come up, the socket's end still ends this connection.
      socket.once("close", () => resolve({ kind: "ended", reason, upMs: Date.now() - startedAt }));
      server.emit("connection", socket);
    });
  }

  async function run(): Promise<void> {
    let attempt = 0;
    for (;;) {
      if (closing) return stop("closed", "The agent was closed.");
      emit({ type: "connecting", attempt: attempt + 1 });
      const outcome = await dial();
      if (closing) return stop("closed", "The agent was closed.");
      let why: string;
      if (outcome.kind === "refused") {
        if (outcome.status === 401 || outcome.status === 403) return stop("unauthorized", `The gateway refused the tunnel token: ${outcome.message}`);
        if (outcome.status === 400) return stop("rejected", `The gateway refused the tunnel: ${outcome.message}`);
        why = `the gateway answered HTTP ${outcome.status}: ${outcome.message}`;
      } else if (outcome.kind === "failed") {
        why = outcome.message;
      } else {
        if (outcome.reason === "replaced") return stop("replaced", "Another agent connected for this session and took the tunnel over.");
        if (outcome.reason === "revoked") return stop("revoked", "The tunnel token was revoked.");
        if (outcome.upMs >= stableAfterMs) attempt = 0;
        why = outcome.reason === "closing" ? "the gateway is restarting" : "the connection was lost";
      }
      attempt += 1;
      const retryInMs = reconnectDelay({ attempt, initialMs, maxMs });
      emit({ type: "disconnected", reason: why, retryInMs });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, retryInMs);
        function done(): void {
          clearTimeout(timer);
          wake = null;
          resolve();
        }
        wake = done;
      });
    }
  }

  function stop(reason: TunnelAgentStopReason, message: string): void {
    closing = true;
    emit({ type: "stopped", reason, message });
    void proxy.close().catch(() => undefined);
    resolveStopped({ reason, message });
  }

  void run();

  return {
    stopped,
    get connected() {
      return session !== null && !session.destroyed;
    },
    async close(closeOptions) {
      if (!closing) {
        closing = true;
        const current = session;
        if (current !== null) {
          // GOAWAY first: the hub marks the tunnel stopped at once and sends nothing new.
          current.close();
          const grace = setTimeout(() => current.destroy(), closeOptions?.graceMs ?? 5_000);
          grace.unref();
        }
        dialing?.destroy();
        wake?.();
      }
      await stopped;
    },
  };
}

async function readMessage(response: IncomingMessage): Promise<string> {
  let text = "";
  response.setEncoding("utf8");
  try {
    for await (const chunk of response as AsyncIterable<string>) {
      text += chunk;
      if (text.length > 16_384) break;
    }
  } catch {
    // What arrived is all there is to tell.
  }
  try {
    const parsed = JSON.parse(text) as { error?: { message?: unknown } };
    if (typeof parsed.error?.message === "string") return parsed.error.message;
  } catch {
    // Not JSON: a proxy's page, say.
  }
  return text.trim().slice(0, 300) || `HTTP ${response.statusCode ?? 0}`;
}

function ignore(): void {
  // The session's 'close' says all the agent acts on.
}

