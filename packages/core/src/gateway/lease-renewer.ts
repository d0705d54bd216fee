import type { BudgetLedger } from "../budget/budget-ledger.js";

/**
 * Keeps the reservations of running requests alive: one timer for the gateway, renewing every
 * registered request each half lease, rather than an interval per request. A reservation lives
 * for one lease unless renewed and a stream may outlive it; renewing at half the lease keeps the
 * worst case held for as long as the request runs, while a crashed instance's holds still lapse.
 *
 * A request registered just after a tick is renewed at the next one, at most half a lease later:
 * still before its reservation would lapse.
 */
export class LeaseRenewer {
  readonly #running = new Set<string>();
  readonly #ledger: BudgetLedger;
  readonly #leaseMs: number;
  #timer: ReturnType<typeof setInterval> | null = null;

  constructor(ledger: BudgetLedger, leaseMs: number) {
    this.#ledger = ledger;
    this.#leaseMs = leaseMs;
  }

  /** Renews `requestId`'s reservation until `stop`. */
  start(requestId: string): void {
    this.#running.add(requestId);
    if (this.#timer === null) {
      // Started on first use and kept: creating and clearing it per request would cost what
      // sharing it saves. Unref'd, so it never holds the process open.
      this.#timer = setInterval(() => this.#renewAll(), Math.max(1, Math.floor(this.#leaseMs / 2)));
      this.#timer.unref();
    }
  }

  stop(requestId: string): void {
    this.#running.delete(requestId);
  }

  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#running.clear();
  }

  #renewAll(): void {
    for (const requestId of this.#running) {
      this.#ledger.renew({ requestId, leaseMs: this.#leaseMs }).catch(() => null);
    }
  }
}
