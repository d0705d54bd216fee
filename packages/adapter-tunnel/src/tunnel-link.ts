import { readBounded } from "@sluice/core";
import type { ProviderRecord } from "@sluice/core";
import type { TunnelDirectory, TunnelRequest, TunnelResponse } from "./tunnel-directory.js";
import { headerText, parseErrorBody, statusError, transitError, tunnelStopped } from "./tunnel-errors.js";

/** Error bodies are read up to this size: enough for any real message, bounded against a runaway. */
const errorBodyLimit = 64 * 1024;

/**
 * A provider record bound to its tunnel. Every exchange re-checks, at the moment it is sent, that
 * the tunnel exists, is running and belongs to the record's owner: a record that says `running`
 * may lag a tunnel that just dropped, and a record that is not the tunnel's own (a provider entered
 * by hand with another user's tunnel id) must never reach it.
 */
export class TunnelLink {
  readonly #record: ProviderRecord;
  readonly #tunnelId: string;
  readonly #directory: TunnelDirectory;

  constructor(input: { record: ProviderRecord; tunnelId: string; directory: TunnelDirectory }) {
    this.#record = input.record;
    this.#tunnelId = input.tunnelId;
    this.#directory = input.directory;
  }

  get tunnelId(): string {
    return this.#tunnelId;
  }

  /** Whether the tunnel can take a request now. */
  serving(): boolean {
    const tunnel = this.#directory.get(this.#tunnelId);
    return tunnel !== null && tunnel.openai && tunnel.status === "running" && tunnel.userId === this.#record.owner;
  }

  /**
   * Sends one exchange and resolves with a 2xx response whose body the caller must consume or
   * destroy. Anything else rejects with its GatewayError: 503 when the tunnel cannot serve, the
   * model server's status normalized, a transit failure as 502, an abort as "cancelled".
   */
  async send(request: TunnelRequest): Promise<TunnelResponse> {
    if (!this.serving()) throw tunnelStopped(this.#record.name);
    let response: TunnelResponse;
    try {
      response = await this.#directory.request(this.#tunnelId, request);
    } catch (error) {
      // The tunnel dropped between the check and the send: say so the way every stopped tunnel does.
      if (!request.signal.aborted && !this.serving()) throw tunnelStopped(this.#record.name);
      throw transitError(error, request.signal);
    }
    if (response.status >= 200 && response.status < 300) return response;
    const text = await readBounded(response.body, errorBodyLimit);
    if (request.signal.aborted) throw transitError(request.signal.reason, request.signal);
    throw statusError({
      status: response.status,
      headers: response.headers,
      body: parseErrorBody(text, headerText(response.headers, "content-type")),
    });
  }
}
