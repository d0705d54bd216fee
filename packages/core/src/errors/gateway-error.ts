/**
 * The one error type Sluice throws. It carries the OpenAI error shape and an HTTP status, so any
 * layer can throw it and the HTTP edge serializes it unchanged.
 *
 * Branded with `Symbol.for`, so `GatewayError.is` works across duplicate copies of this package
 * in one process (a host that bundles two versions of @sluice/core still recognizes both).
 */

const brand = Symbol.for("sluice.gateway-error");

/** Every error code Sluice produces, with the HTTP status and OpenAI `type` it maps to. */
export const errorCodes = {
  invalid_request: { status: 400, type: "invalid_request_error" },
  unknown_parameter: { status: 400, type: "invalid_request_error" },
  content_filter: { status: 400, type: "invalid_request_error" },
  invalid_api_key: { status: 401, type: "invalid_request_error" },
  expired_api_key: { status: 401, type: "invalid_request_error" },
  revoked_api_key: { status: 401, type: "invalid_request_error" },
  missing_identity: { status: 401, type: "invalid_request_error" },
  allocation_exhausted: { status: 402, type: "insufficient_quota" },
  key_limit_exhausted: { status: 402, type: "insufficient_quota" },
  permission_denied: { status: 403, type: "permission_error" },
  sharing_not_supported: { status: 403, type: "permission_error" },
  model_not_found: { status: 404, type: "invalid_request_error" },
  not_found: { status: 404, type: "invalid_request_error" },
  method_not_allowed: { status: 405, type: "invalid_request_error" },
  conflict: { status: 409, type: "invalid_request_error" },
  request_too_large: { status: 413, type: "invalid_request_error" },
  unsupported_media_type: { status: 415, type: "invalid_request_error" },
  rate_limit_exceeded: { status: 429, type: "requests" },
  internal_error: { status: 500, type: "server_error" },
  upstream_error: { status: 502, type: "server_error" },
  provider_unavailable: { status: 503, type: "server_error" },
  upstream_timeout: { status: 504, type: "server_error" },
} as const satisfies Record<string, { status: number; type: string }>;

export type GatewayErrorCode = keyof typeof errorCodes;

/** The wire shape: every key present, `null` where there is nothing to say (OpenAI's `Error` schema). */
export interface OpenAIErrorBody {
  error: {
    message: string;
    type: string;
    param: string | null;
    code: string | null;
  };
}

export interface GatewayErrorOptions {
  /** The request field at fault, for 400s (`messages[0].content`). */
  param?: string | null;
  /** Overrides the status from the code table; used to relay an upstream's own status. */
  status?: number;
  /** Overrides the OpenAI `type`; used to relay an upstream's own type. */
  type?: string;
  /** Headers the HTTP edge sends with the error (`retry-after`, for example). */
  headers?: Record<string, string>;
  /** The `code` sent on the wire, when relaying an upstream's own (`unsupported_parameter`). */
  wireCode?: string | null;
  /**
   * Further fields of the wire error object, when relaying an upstream's error with its details
   * (Azure's `innererror` with the content-filter results). The four OpenAI keys always win.
   */
  details?: Record<string, unknown>;
  /**
   * Overrides retryability computed from the status: a 502 for a provider's rejected
   * credentials fails the same way on every try, so it says `false`.
   */
  retryable?: boolean;
  /**
   * The failure belongs to the deployment that was called (a wrong URL, a redirect): another
   * deployment of the model may serve the request, this one would fail the same way again.
   */
  deploymentFault?: boolean;
  cause?: unknown;
}

export class GatewayError extends Error {
  readonly [brand] = true;
  override readonly name = "GatewayError";
  readonly code: GatewayErrorCode;
  readonly status: number;
  readonly type: string;
  readonly param: string | null;
  readonly headers: Readonly<Record<string, string>>;
  readonly wireCode: string | null;
  readonly details: Readonly<Record<string, unknown>> | null;
  readonly deploymentFault: boolean;
  readonly #retryable: boolean | undefined;

  constructor(code: GatewayErrorCode, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const entry = errorCodes[code];
    this.code = code;
    this.status = options.status ?? entry.status;
    this.type = options.type ?? entry.type;
    this.param = options.param ?? null;
    this.headers = options.headers ?? {};
    this.wireCode = options.wireCode === undefined ? code : options.wireCode;
    this.details = options.details ?? null;
    this.#retryable = options.retryable;
    this.deploymentFault = options.deploymentFault ?? false;
  }

  static is(value: unknown): value is GatewayError {
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[brand] === true;
  }

  /** Wraps anything thrown into a GatewayError without leaking internals into the message. */
  static from(value: unknown): GatewayError {
    if (GatewayError.is(value)) return value;
    return new GatewayError("internal_error", "The gateway had an internal error while processing the request.", {
      cause: value,
    });
  }

  /** Whether a caller may retry: rate limits and upstream failures, never a client's own mistake. */
  get retryable(): boolean {
    if (this.#retryable !== undefined) return this.#retryable;
    return this.status === 408 || this.status === 409 || this.status === 429 || this.status >= 500;
  }

  toJSON(): OpenAIErrorBody {
    return {
      error: { ...this.details, message: this.message, type: this.type, param: this.param, code: this.wireCode },
    };
  }
}
