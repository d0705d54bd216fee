/**
 * The reverse tunnel's wire protocol, shared by the hub (gateway side) and the agent (session
 * side). Nothing home-made carries requests: the agent opens an HTTP/1.1 connection to the
 * gateway and asks to switch protocols (RFC 9110 §7.8); after `101 Switching Protocols` the
 * connection speaks plain HTTP/2 (RFC 9113) with the roles reversed, the hub as the client and the
 * agent as the server, so every request is one HTTP/2 stream with its own flow control and
 * RST_STREAM cancellation, and PING frames serve as heartbeats.
 *
 * Kept free of @sluice/core imports: the agent ships as a small standalone CLI.
 */

/** The `Upgrade` token. A new major version of this protocol gets a new token. */
export const TUNNEL_UPGRADE_PROTOCOL = "sluice-tunnel/1";

/** The session's name, chosen by the agent (`--name`); the user always comes from the token. */
export const TUNNEL_NAME_HEADER = "x-sluice-tunnel-name";

/** The agent's version, for diagnostics. */
export const TUNNEL_AGENT_HEADER = "x-sluice-tunnel-agent";

/** Set by the agent on an answer it made itself (the model server could not be reached). */
export const TUNNEL_ERROR_HEADER = "x-sluice-tunnel-error";

/**
 * Why the hub closes a connection, sent as GOAWAY opaque data: the agent reconnects after
 * `closing` (the gateway restarts), and stops after `replaced` (another agent now serves this
 * session) or `revoked` (its token was revoked).
 */
export const tunnelCloseReasons = ["closing", "replaced", "revoked"] as const;
export type TunnelCloseReason = (typeof tunnelCloseReasons)[number];

/** Connection-specific headers (RFC 9113 §8.2.2) that HTTP/2 forbids and a proxy never forwards. */
const hopByHop = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
  "host",
  "http2-settings",
]);

/** Credentials that must not cross the tunnel in either direction. */
const credentials = new Set(["authorization", "proxy-authorization", "cookie", "set-cookie", "api-key"]);

export type HeaderMap = Record<string, string | string[] | undefined>;

/**
 * The headers to forward across the tunnel: lower-case names, without HTTP/2 pseudo-headers,
 * hop-by-hop headers or credentials.
 */
export function forwardableHeaders(headers: HeaderMap): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [rawName, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const name = rawName.toLowerCase();
    if (name.startsWith(":") || hopByHop.has(name) || credentials.has(name)) continue;
    out[name] = value;
  }
  return out;
}
