import { createEventBus, systemClock } from "@sluice/core";
import type { SluiceStores, StoreOptions } from "@sluice/core";
import { createMemoryBudgetLedger } from "./memory-budget-ledger.js";
import { createMemoryKeyStore } from "./memory-key-store.js";
import { createMemoryPermissionStore } from "./memory-permission-store.js";
import { createMemoryProviderCatalog } from "./memory-provider-catalog.js";

/**
 * Every store in process memory, sharing one clock and one event bus: the embedded default for a
 * single gateway instance, and what tests use. Nothing survives a restart, and instances do not
 * share budgets: run several gateways against a shared store instead.
 */
export function createMemoryStores(options: StoreOptions): SluiceStores {
  const clock = options.clock ?? systemClock;
  const events = options.events ?? createEventBus();
  return {
    catalog: createMemoryProviderCatalog({ secretBox: options.secretBox, clock, events }),
    permissions: createMemoryPermissionStore({ clock, events }),
    keys: createMemoryKeyStore({ clock, events }),
    ledger: createMemoryBudgetLedger({ clock, events }),
    // Nothing to release: no connections, no timers (expiry is checked lazily against the clock).
    async close() {},
  };
}
