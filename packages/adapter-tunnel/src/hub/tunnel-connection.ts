import http2 from "node:http2";
import type { ClientHttp2Session, ClientHttp2Stream, OutgoingHttpHeaders } from "node:http2";
import type { Duplex } from "node:stream";
import { GatewayError } from "@sluice/core";
import { forwardableHeaders } from "../protocol/tunnel-protocol.js";
import type { TunnelCloseReason } from "../protocol/tunnel-protocol.js";
import type { TunnelRequest, TunnelResponse } from "../tunnel-directory.js";
import { cancelledError } from "../tunnel-errors.js";

export interface TunnelConnectionOptions {
  /** The upgraded socket, after the hub's `101 Switching Protocols` has been written. */
  socket: Duplex;
  /** Bytes that arrived with the upgrade request, to be read before the socket's own. */
  head: Buffer;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  handshakeTimeoutMs: number;
  /** Once the agent's HTTP/2 SETTINGS arrived: the tunnel can carry requests. */
  onReady(): void;
  /** Once, when the connection is gone (after `onReady` or instead of it). */
  onClose(): void;
}

/** Per-stream and per-connection flow-control windows: enough for full-speed streams of many requests. */
const streamWindowBytes = 1024 * 1024;
const connectionWindowBytes = 32 * 1024 * 1024;

/**
 * The hub's end of one agent connection: an HTTP/2 client session over the upgraded socket.
 * Each request is one stream; aborting it sends RST_STREAM (CANCEL), which the agent turns into an
 * aborted request to the model server. A PING goes out every `heartbeatIntervalMs`; one left
 * unanswered for `heartbeatTimeoutMs` means the connection is dead (a frozen agent, a network that
 * silently dropped it), and it is torn down.
 */
export class TunnelConnection {
  readonly #session: ClientHttp2Session;
  readonly #options: TunnelConnectionOptions;
  #ready = false;
  #closed = false;
  #heartbeat: NodeJS.Timeout | null = null;
  #pingTimer: NodeJS.Timeout | null = null;
  readonly #handshakeTimer: NodeJS.Timeout;

  constructor(options: TunnelConnectionOptions) {
    this.#options = options;
    const { socket, head } = options;
    if (head.length > 0) socket.unshift(head);
    this.#session = http2.connect("http://sluice-tunnel.invalid", {
      createConnection: () => socket,
      settings: { enablePush: false, initialWindowSize: streamWindowBytes },
      maxSessionMemory: 64,
    });
    // The hub's sockets come from an HTTP server, which keeps a connection half-open when the peer
    // ends its side; HTTP/2 does not notice either. An agent never half-closes: its end (a killed
    // process, whose kernel sent FIN) is the connection's end, now, not at the next heartbeat.
    socket.once("end", () => this.#destroy());
    const session = this.#session;
    session.on("error", () => {
      // 'close' follows and says everything the hub needs; the cause is the socket's.
    });
    session.once("close", () => this.#finish());
    session.once("remoteSettings", () => {
      clearTimeout(this.#handshakeTimer);
      if (this.#closed) return;
      this.#ready = true;
      session.setLocalWindowSize(connectionWindowBytes);
      this.#startHeartbeat();
      options.onReady();
    });
    this.#handshakeTimer = setTimeout(() => this.#destroy(), options.handshakeTimeoutMs);
    this.#handshakeTimer.unref();
  }

  get open(): boolean {
    return this.#ready && !this.#closed && !this.#session.closed && !this.#session.destroyed;
  }

  request(request: TunnelRequest): Promise<TunnelResponse> {
    if (!this.open) return Promise.reject(new GatewayError("provider_unavailable", "The session tunnel is not connected."));
    const { signal } = request;
    if (signal.aborted) return Promise.reject(cancelledError(signal.reason));
    const headers: OutgoingHttpHeaders = { ...forwardableHeaders(request.headers), ":method": request.method, ":path": request.path };
    const body = request.body === undefined ? undefined : Buffer.from(request.body, "utf8");
    if (body !== undefined) headers["content-length"] = body.byteLength;
    let stream: ClientHttp2Stream;
    try {
      stream = this.#session.request(headers, { endStream: body === undefined });
    } catch (error) {
      // After about a billion requests a connection runs out of stream ids (RFC 9113 §5.1.1): close
      // it, and the agent reconnects with fresh ones.
      if ((error as { code?: unknown }).code === "ERR_HTTP2_OUT_OF_STREAMS") this.close("closing");
      return Promise.reject(new GatewayError("provider_unavailable", "The session tunnel is not connected.", { cause: error }));
    }
    return new Promise<TunnelResponse>((resolve, reject) => {
      let settled = false;
      const fail = (error: GatewayError): void => {
        if (settled) return;
        settled = true;
        reject(error);
      };
      const onAbort = (): void => {
        if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
        fail(cancelledError(signal.reason));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      // Stays attached: an error after the answer reaches whoever reads the body through its iterator.
      stream.on("error", (error) => fail(new GatewayError("upstream_error", "The session tunnel failed while sending the request.", { cause: error })));
      stream.once("close", () => {
        signal.removeEventListener("abort", onAbort);
        fail(new GatewayError("upstream_error", "The session tunnel closed the request before the model server answered."));
      });
      stream.once("response", (responseHeaders) => {
        if (settled) return;
        settled = true;
        const out: Record<string, string | string[] | undefined> = {};
        for (const [name, value] of Object.entries(responseHeaders)) if (!name.startsWith(":")) out[name] = value;
        resolve({ status: Number(responseHeaders[":status"]), headers: out, body: stream });
      });
      if (body !== undefined) stream.end(body);
    });
  }

  /**
   * Closes the connection, telling the agent why in the GOAWAY's opaque data. In-flight requests
   * are cut: a replaced or revoked connection must not keep serving.
   */
  close(reason: TunnelCloseReason): void {
    if (this.#closed) return;
    const session = this.#session;
    try {
      if (!session.closed && !session.destroyed) session.goaway(http2.constants.NGHTTP2_NO_ERROR, 0, Buffer.from(reason));
    } catch {
      // Already going away.
    }
    // Give the GOAWAY a moment to leave before the socket goes.
    const timer = setTimeout(() => this.#destroy(), 50);
    timer.unref();
  }

  #startHeartbeat(): void {
    this.#heartbeat = setInterval(() => this.#beat(), this.#options.heartbeatIntervalMs);
    this.#heartbeat.unref();
  }

  #beat(): void {
    // One PING at a time: while one is unanswered, the timer below decides.
    if (this.#pingTimer !== null) return;
    const timer = setTimeout(() => this.#destroy(), this.#options.heartbeatTimeoutMs);
    timer.unref();
    this.#pingTimer = timer;
    const answered = (error: Error | null): void => {
      clearTimeout(timer);
      this.#pingTimer = null;
      if (error !== null) this.#destroy();
    };
    try {
      if (!this.#session.ping(answered)) answered(new Error("too many unanswered pings"));
    } catch (error) {
      answered(error instanceof Error ? error : new Error(String(error)));
    }
  }

  #destroy(): void {
    if (!this.#session.destroyed) this.#session.destroy();
    this.#finish();
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#handshakeTimer);
    if (this.#heartbeat !== null) clearInterval(this.#heartbeat);
    if (this.#pingTimer !== null) clearTimeout(this.#pingTimer);
    this.#options.onClose();
  }
}
