import { configDefaults, defineConfig } from "vitest/config";

// Tests run against the packages' TypeScript sources: the `@sluice/source` export condition maps
// each workspace package to its src/ entry, so no build is needed between an edit and a test run.
const conditions = ["@sluice/source", "node", "import", "module", "default"];

const testOptions = { testTimeout: 20_000, hookTimeout: 60_000, pool: "forks" } as const;

const postgresTests = "packages/store-postgres/src/**/*.test.ts";
// Vitest hands the SSR conditions to its workers as `node --conditions`, which CommonJS require()
// honours too: with `import` among them, node-postgres' require('pg-pool') loads pg-pool's ESM
// build and breaks. Vite adds `import` to ESM imports by itself, so this project leaves it out.
const postgresConditions = ["@sluice/source", "node", "default"];

// The same holds for every project: Express's router requires is-promise, whose ESM build is a
// namespace rather than a function. Only the SSR (worker) conditions leave `import` out.
const serverConditions = conditions.filter((condition) => condition !== "import");

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions: serverConditions, externalConditions: serverConditions } },
  test: {
    ...testOptions,
    projects: [
      {
        extends: true,
        test: {
          name: "packages",
          include: ["packages/*/src/**/*.test.ts", "examples/*/src/**/*.test.ts", "bench/src/**/*.test.ts"],
          exclude: [...configDefaults.exclude, postgresTests],
        },
      },
      {
        // Needs a PostgreSQL server: the global setup starts one per run (or uses DATABASE_URL),
        // and only when this project has tests to run. It runs after the other project (a later
        // group), so its database load never skews the timing-sensitive streaming tests there.
        extends: false,
        resolve: { conditions: postgresConditions },
        ssr: { resolve: { conditions: postgresConditions, externalConditions: postgresConditions } },
        test: {
          ...testOptions,
          name: "store-postgres",
          include: [postgresTests],
          sequence: { groupOrder: 1 },
          globalSetup: ["packages/store-postgres/src/testing/postgres-global-setup.ts"],
        },
      },
    ],
  },
});
