import type { LeaseRenewer } from "./lease-renewer.js";
import type { Clock } from "../clock/clock.js";
import type { SluiceEventBus } from "../events/sluice-events.js";
import type { PriceBook } from "../pricing/price-book.js";
import type { GatewayOptions, GatewayRetry, GatewayTimeouts } from "./gateway-options.js";
import type { AllocationDirectory } from "./choose-allocation.js";
import type { ProviderRegistry } from "./provider-registry.js";
import type { StoreAnswers } from "./store-answers.js";

/** What every handler needs, resolved once from the options. */
export interface GatewayContext {
  stores: GatewayOptions["stores"];
  identify: GatewayOptions["identify"];
  registry: ProviderRegistry;
  allocations: AllocationDirectory;
  /** The catalog's and permission store's answers, reused while neither changes. */
  answers: StoreAnswers;
  prices: PriceBook | null;
  events: SluiceEventBus;
  clock: Clock;
  maxBodyBytes: number;
  defaultMaxOutputTokens: number;
  fileTokenAllowance: number;
  reservationLeaseMs: number;
  /** Renews the reservations of running requests. */
  leases: LeaseRenewer;
  timeouts: GatewayTimeouts;
  retry: GatewayRetry;
}
