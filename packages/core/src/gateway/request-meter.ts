import type { BudgetLedger, Reservation } from "../budget/budget-ledger.js";
import type { Clock } from "../clock/clock.js";
import type { SluiceEventBus } from "../events/sluice-events.js";
import { costOf } from "../pricing/price-book.js";
import type { ModelPrice } from "../pricing/price-book.js";
import type { ProviderStreamBatch, TokenUsage } from "../provider/provider.js";
import { countTextTokens } from "../streaming/count-tokens.js";
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
 * The generated text a stream without usage keeps for counting: a long answer's first 256 Ki
 * characters (at most 512 KiB of heap) for the stream's life, where holding all of it would grow
 * with the answer.
 */
const keptOutputChars = 256 * 1024;

/**
 * Counts what one request used and settles its reservation exactly once: a commit of the actual
 * cost when anything was used, a release when nothing was. Settling never throws into the
 * request; a commit is retried, because a lost commit is a lost charge.
 */
export class RequestMeter {
  usage: TokenUsage | null = null;
  /** Events with output since the last usage report (or the start). */
  outputEvents = 0;
  /**
   * The upstream answered (a stream started): its prompt was read, so settling charges the counted
   * input even when no usage and no output came, rather than recording the request as free.
   */
  answered = false;
  /** The generated text of a stream without usage so far, up to `keptOutputChars`, to count. */
  #outputText = "";
  /** Characters of generated text seen, kept or not. */
  #outputChars = 0;
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
    if (batch.usage !== null) {
      // The report covers everything so far: only what follows it remains to be counted.
      this.usage = batch.usage;
      this.outputEvents = 0;
      this.#outputText = "";
      this.#outputChars = 0;
      return;
    }
    this.outputEvents += batch.outputDeltaEvents;
    const text = batch.outputText;
    if (text === undefined || text === "") return;
    this.#outputChars += text.length;
    if (this.#outputText.length < keptOutputChars) this.#outputText += text.slice(0, keptOutputChars - this.#outputText.length);
  }

  /**
   * The output of a stream that reported no usage, counted with the tokenizer; what was not kept
   * (past `keptOutputChars`) is assumed to run at the kept text's tokens per character. Events
   * count instead when batches carried no text, or the tokenizer cannot load.
   */
  async countedOutput(): Promise<number> {
    if (this.#outputChars === 0) return this.outputEvents;
    try {
      const tokens = await countTextTokens(this.#outputText);
      return this.#outputChars === this.#outputText.length ? tokens : Math.ceil((tokens * this.#outputChars) / this.#outputText.length);
    } catch {
      return this.outputEvents;
    }
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
      usage = { inputTokens, outputTokens: await this.countedOutput(), source: "counted" };
    } else if (usage !== null && this.outputEvents > 0) {
      // Output after the last report (a server that reported early, a stream cut before its
      // final usage) is generated all the same.
      usage = { ...usage, outputTokens: usage.outputTokens + (await this.countedOutput()) };
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
