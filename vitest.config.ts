import { defineConfig } from "vitest/config";

// Tests run against the packages' TypeScript sources: the `@sluice/source` export condition maps
// each workspace package to its src/ entry, so no build is needed between an edit and a test run.
const conditions = ["@sluice/source", "node", "import", "module", "default"];
// Vitest also hands the SSR conditions to the worker's Node as `--conditions`, where they apply to
// `require` too: with "import" among them, a CommonJS package requiring a dual package gets its
// ESM build (Express's router requiring is-promise gets a namespace, not a function). Vite adds
// "import" and "default" by itself where they belong.
const serverConditions = conditions.filter((condition) => condition !== "import");

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions: serverConditions, externalConditions: serverConditions } },
  test: {
    include: ["packages/*/src/**/*.test.ts", "examples/*/src/**/*.test.ts"],
    testTimeout: 20_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
