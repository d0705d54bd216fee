import type { Clock } from "../clock/clock.js";
import type { SluiceEventBus } from "../events/sluice-events.js";
import type { PriceBook } from "../pricing/price-book.js";
import type { ProviderAdapter } from "../provider/provider.js";
import type { SluiceStores } from "../stores.js";

/**
 * Who the host says is calling, for requests that come from its own logged-in UI rather than
 * with an AI key. Metered exactly like key traffic.
 */
export interface HostIdentity {
  userId: string;
  /** The allocation to draw from; when absent, the first (by name) the user may draw from that has money left. */
  allocationId?: string;
}

/** What the host's `identify` hook sees: the request's headers and the framework's own request object. */
export interface IdentifyInput {
  headers: GatewayHeaders;
  /** The node:http IncomingMessage (an Express or Koa request underneath), or the fetch Request. */
  raw: unknown;
}

export interface GatewayHeaders {
  /** A header's value, by lower-case name; the first one when repeated. */
  get(name: string): string | undefined;
}

export interface GatewayTimeouts {
  /**
   * From sending the request until a stream's first event, or an embeddings answer. A non-streamed
   * completion arrives whole, so only `totalMs` bounds it: a first-byte limit would cut long
   * generations, and the retry after it would run them upstream a second time.
   */
  firstByteMs: number;
  /** Longest silence between two stream events. */
  idleMs: number;
  /** The whole request, stream included. */
  totalMs: number;
}

export interface GatewayRetry {
  /** Tries per deployment, the first included. */
  attemptsPerDeployment: number;
  /** The first backoff; it doubles per retry, with jitter. */
  baseDelayMs: number;
  /** The longest wait, also for an upstream's `retry-after`: a longer one moves to the next deployment. */
  maxDelayMs: number;
}

export interface GatewayOptions {
  stores: Pick<SluiceStores, "catalog" | "permissions" | "keys" | "ledger">;
  /** One adapter per provider kind the gateway serves. */
  adapters: readonly ProviderAdapter[];
  /** Model prices; a model with no price is metered in tokens at zero cost. */
  prices?: PriceBook;
  events?: SluiceEventBus;
  clock?: Clock;
  /** Resolves a request without an AI key to a host user (its login session), or null. */
  identify?: (input: IdentifyInput) => HostIdentity | null | Promise<HostIdentity | null>;
  /** Largest request body accepted, in bytes (413 beyond). Default 8 MiB. */
  maxBodyBytes?: number;
  /**
   * The output cap for a request to a priced model that sets no `max_tokens` or
   * `max_completion_tokens`: its reservation assumes it, and the upstream is told it (as the cap
   * field the adapter's upstream knows), so the request cannot cost more than was reserved.
   * Default 4,096.
   */
  defaultMaxOutputTokens?: number;
  /**
   * The input tokens reserved for each file a chat request sends or names (a `file` or
   * `input_file` content part), on top of the body's size: an uploaded file's id says nothing of
   * how long it is, and a PDF is billed as its text plus an image of every page. Set it to the
   * largest prompt your priced models accept (some take 200k or 1M tokens), or 0 to bound files
   * by their bytes alone. Default 131,072.
   */
  fileTokenAllowance?: number;
  /**
   * How long a reservation lives unless renewed. A running request renews its own every half
   * lease; an instance that dies stops renewing, and its holds lapse after at most one lease.
   * Default 10 minutes.
   */
  reservationLeaseMs?: number;
  /** How often this instance deletes lapsed reservations (`ledger.sweepExpired`); 0 never. Default 60 s. */
  sweepIntervalMs?: number;
  timeouts?: Partial<GatewayTimeouts>;
  retry?: Partial<GatewayRetry>;
}

export const defaultTimeouts: GatewayTimeouts = { firstByteMs: 60_000, idleMs: 60_000, totalMs: 15 * 60_000 };
export const defaultRetry: GatewayRetry = { attemptsPerDeployment: 2, baseDelayMs: 100, maxDelayMs: 5_000 };
