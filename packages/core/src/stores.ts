import type { BudgetLedger } from "./budget/budget-ledger.js";
import type { Clock } from "./clock/clock.js";
import type { SluiceEventBus } from "./events/sluice-events.js";
import type { KeyStore } from "./keys/key-store.js";
import type { PermissionStore } from "./permissions/permission-store.js";
import type { ProviderCatalog } from "./provider/provider-catalog.js";
import type { SecretBox } from "./provider/secret-box.js";

/** Every store a gateway needs, from one implementation (memory, Postgres, ...). */
export interface SluiceStores {
  catalog: ProviderCatalog;
  permissions: PermissionStore;
  keys: KeyStore;
  ledger: BudgetLedger;
  /** Releases connections and timers. Idempotent. */
  close(): Promise<void>;
}

/** What every store implementation takes. */
export interface StoreOptions {
  /** Encrypts provider secrets at rest. */
  secretBox: SecretBox;
  /** Defaults to the system clock. */
  clock?: Clock;
  /** Where the stores report their changes; a private bus when absent. */
  events?: SluiceEventBus;
}
