export * from "./store-harness.js";
export * from "./describe-budget-ledger.js";
export * from "./describe-key-store.js";
export * from "./describe-permission-store.js";
export * from "./describe-provider-catalog.js";
export * from "./fake-upstream.js";
export * from "./describe-provider.js";
export * from "./expect-gateway-error.js";
