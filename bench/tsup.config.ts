import { defineConfig } from "tsup";

// One bundle per process the benchmark starts. Workspace packages are dependencies, so they stay
// external and load from their built dist/ (the root `bench` script builds first), exactly as a
// host would run them.
export default defineConfig({
  entry: {
    "run-bench": "src/run-bench.ts",
    "load-generator": "src/load-generator.ts",
    "upstream-server": "src/upstream-server.ts",
    "minimal-proxy": "src/minimal-proxy.ts",
    "dispatch-proxy": "src/dispatch-proxy.ts",
    "sluice-server": "src/sluice-server.ts",
    "profile-summary": "src/profile-summary.ts",
    "pool-runs": "src/pool-runs.ts",
    "focus-cell": "src/focus-cell.ts",
    "gateway-overhead": "src/gateway-overhead.ts",
    "skeleton-server": "src/skeleton-server.ts",
  },
  format: ["esm"],
  dts: false,
  clean: true,
  target: "node22",
  sourcemap: true,
});
