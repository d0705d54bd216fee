import { defineConfig } from "vitest/config";

// Tests run against the packages' TypeScript sources: the `@sluice/source` export condition maps
// each workspace package to its src/ entry, so no build is needed between an edit and a test run.
const conditions = ["@sluice/source", "node", "import", "module", "default"];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: conditions } },
  test: {
    include: ["packages/*/src/**/*.test.ts", "examples/*/src/**/*.test.ts"],
    testTimeout: 20_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
