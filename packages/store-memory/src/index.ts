export * from "./memory-provider-catalog.js";
export * from "./memory-permission-store.js";
export * from "./memory-key-store.js";
export * from "./memory-budget-ledger.js";
export * from "./memory-stores.js";
