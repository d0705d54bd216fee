import { GatewayError } from "../errors/gateway-error.js";
import { formatMicros } from "../money/micro-dollars.js";
import type { MicroDollars } from "../money/micro-dollars.js";
import type { ModelPrice } from "../pricing/price-book.js";
import type { Caller } from "./authenticate.js";
import { chooseAllocation } from "./choose-allocation.js";
import type { GatewayContext } from "./gateway-context.js";
import { RequestMeter } from "./request-meter.js";
import type { ResolvedModel } from "./resolve-model.js";

/**
 * Reserves a request's worst case against its allocation (and its key's cap) before any upstream
 * call, and returns the meter that will settle it. An exhausted budget answers 402 here, so no
 * model is ever called on money that is not there.
 */
export async function reserveBudget(input: {
  context: GatewayContext;
  requestId: string;
  caller: Caller;
  resolved: ResolvedModel;
  price: ModelPrice | null;
  amount: MicroDollars;
}): Promise<RequestMeter> {
  const { context, requestId, caller, resolved, amount } = input;
  const { ledger } = context.stores;
  const allocation = await chooseAllocation({ caller, ledger, answers: context.answers, directory: context.allocations });
  const result = await ledger.reserve({
    requestId,
    allocationId: allocation.id,
    userId: caller.userId,
    keyId: caller.key?.id ?? null,
    keyLimit: caller.key?.limit ?? null,
    amount,
    leaseMs: context.reservationLeaseMs,
  });
  if (!result.ok) {
    context.events.publish("budget-refuse", {
      requestId,
      userId: caller.userId,
      keyId: caller.key?.id ?? null,
      allocationId: allocation.id,
      reason: result.reason,
      amount,
      at: context.clock.now(),
    });
    const message =
      result.reason === "key_limit_exhausted"
        ? `This API key has reached its spending limit (${formatMicros(result.remaining)} left; this request may cost up to ${formatMicros(amount)}).`
        : `The allocation '${allocation.name}' is exhausted (${formatMicros(result.remaining)} left; this request may cost up to ${formatMicros(amount)}). Ask an admin to raise its limit.`;
    throw new GatewayError(result.reason, message);
  }
  return new RequestMeter(
    {
      requestId,
      userId: caller.userId,
      keyId: caller.key?.id ?? null,
      allocationId: allocation.id,
      providerId: resolved.record.id,
      model: resolved.modelId,
      price: input.price,
      reservation: result.reservation,
    },
    { ledger, events: context.events, clock: context.clock, leases: context.leases },
  );
}
