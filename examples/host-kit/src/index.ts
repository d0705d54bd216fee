export * from "./host-config.js";
export * from "./demo-login.js";
export * from "./start-sluice.js";
export * from "./run-example-host.js";
