import type { BudgetLedger, Reservation } from "../budget/budget-ledger.js";
import type { Clock } from "../clock/clock.js";
import type { SluiceEventBus } from "../events/sluice-events.js";
import { costOf } from "../pricing/price-book.js";
import type { ModelPrice } from "../pricing/price-book.js";
import type { ProviderStreamBatch, TokenUsage } from "../provider/provider.js";
import type { LeaseRenewer } from "./lease-renewer.js";

export interface MeterContext {
  requestId: string;
  userId: string;
  keyId: string | null;
  allocationId: string;
  providerId: string;
  /** The model id as the client named it. */
  model: string;
  price: ModelPrice | null;
  reservation: Reservation;
}

/**
 * Counts what one request used and settles its reservation exactly once: a commit of the actual
 * cost when anything was used, a release when nothing was. Settling never throws into the
 * request; a commit is retried, because a lost commit is a lost charge.
 */
export class RequestMeter {
  usage: TokenUsage | null = null;
  outputEvents = 0;
  /**
   * The upstream answered (a stream started): its prompt was read, so settling charges the counted
   * input even when no usage and no output came, rather than recording the request as free.
   */
  answered = false;
  #settled: Promise<void> | null = null;

  constructor(
    private readonly context: MeterContext,
    private readonly services: { ledger: BudgetLedger; events: SluiceEventBus; clock: Clock; leases: LeaseRenewer },
  ) {
    // Held for as long as the request runs: a stream may outlive one lease.
    services.leases.start(context.requestId);
  }

  /** Meters one batch of a stream's events, as the client is about to get them. */
  observe(batch: ProviderStreamBatch): void {
    if (batch.usage !== null) this.usage = batch.usage;
    // Servers stream about one token per output event: the estimate when no usage arrives.
    else if (this.usage === null) this.outputEvents += batch.outputDeltaEvents;
  }

  /**
   * @param fallback counts the input tokens when the upstream reported no usage; called only then.
   */
  settle(fallback: () => Promise<number>): Promise<void> {
    this.services.leases.stop(this.context.requestId);
    // Never rejects: an answer may already be on its way when settling fails.
    this.#settled ??= this.#settle(fallback).catch((error: unknown) => this.#failed(error));
    return this.#settled;
  }

  async #settle(fallback: () => Promise<number>): Promise<void> {
    const { ledger } = this.services;
    let usage = this.usage;
    if (usage === null && (this.outputEvents > 0 || this.answered)) {
      const inputTokens = await fallback().catch(() => 0);
      usage = { inputTokens, outputTokens: this.outputEvents, source: "counted" };
    }
    if (usage === null || (usage.inputTokens === 0 && usage.outputTokens === 0)) {
      await ledger.release(this.context.requestId).catch(() => false);
      return;
    }
    let cost: number;
    try {
      cost = this.context.price ? costOf(this.context.price, usage) : 0;
    } catch {
      // Usage too large to price is an upstream's error: charge the worst case that was held.
      cost = this.context.reservation.amount;
    }
    for (let attempt = 1; ; attempt++) {
      try {
        await ledger.commit({
          requestId: this.context.requestId,
          allocationId: this.context.allocationId,
          userId: this.context.userId,
          keyId: this.context.keyId,
          providerId: this.context.providerId,
          model: this.context.model,
          inputTokens: usage.inputTokens,
          outputTokens: usage.outputTokens,
          cost,
        });
        return;
      } catch (error) {
        if (attempt >= 3) return this.#failed(error);
        await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
      }
    }
  }

  /** A settlement that could not be recorded: said on the event bus, since the request may be answered already. */
  #failed(error: unknown): void {
    this.services.events.publish("request-end", {
      requestId: this.context.requestId,
      status: 500,
      errorCode: "settlement_failed",
      outcome: `settlement-failed: ${error instanceof Error ? error.message : String(error)}`,
      durationMs: 0,
      at: this.services.clock.now(),
    });
  }
}
