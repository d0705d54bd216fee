import type { GatewayHeaders } from "./gateway-options.js";

/** A request as both HTTP edges hand it to the gateway: already routed, its body read or readable. */
export interface GatewayRequest {
  method: string;
  /** The path below the base path: `/chat/completions`, `/models`, ... */
  path: string;
  headers: GatewayHeaders;
  /**
   * The raw body, for POSTs, when the edge has it in hand (null otherwise); the gateway parses it
   * (once) and uses its length for cost bounds.
   */
  body: Uint8Array | null;
  /**
   * Reads the body, for an edge that has not: the gateway calls it once it knows who is asking and
   * that the route takes a JSON body, so a caller without a valid key or login never has its body
   * read, however large. Rejects with a GatewayError (413 past the size limit). Used when `body`
   * is null.
   */
  readBody?: () => Promise<Uint8Array>;
  /** Aborts when the client goes away. */
  signal: AbortSignal;
  /** The framework's request object, for the host's `identify` hook. */
  raw: unknown;
}

/** A JSON answer: `body` is already serialized. */
export interface JsonReply {
  kind: "json";
  status: number;
  headers: Record<string, string>;
  body: string;
  /**
   * For an answer from a model: resolves once the request's budget is settled (never rejects).
   * The edge writes the answer without waiting for it, so a database's commit round trip is not
   * on the client's path; `request-end` is published when it resolves.
   */
  settled?: Promise<void>;
}

/**
 * A server-sent-event stream. `events` yields framed text (`data: ...\n\n`) ready to write; the
 * edge writes each with backpressure and must always finish the iteration (to the end, or with
 * `return()` when the client went away), because finishing is what settles the request's budget.
 * A piece that ends with `data: [DONE]\n\n` is the stream's last: the edge may end the response
 * with it, before the iteration finishes settling.
 */
export interface StreamReply {
  kind: "stream";
  status: number;
  headers: Record<string, string>;
  events: AsyncGenerator<string, void, undefined>;
  /**
   * Aborts when the gateway gives up on the stream: its total time ran out, or what fed it was
   * cancelled. An edge waiting for the client to read more (a full socket) then stops waiting,
   * drops the connection and finishes the iteration, so a client that stops reading without
   * going away cannot hold a stream (and its reservation) open for ever.
   */
  signal?: AbortSignal;
}

export type GatewayReply = JsonReply | StreamReply;

/** The event OpenAI ends a stream with: the last piece a `StreamReply` yields ends with it. */
export const doneEvent = "data: [DONE]\n\n";
