import { defineConfig } from "tsup";

export default defineConfig({
  // The migrations are TypeScript modules holding SQL text, so they are bundled into both entries.
  entry: { index: "src/index.ts", "bin/sluice-postgres": "src/bin/sluice-postgres.ts" },
  format: ["esm"],
  dts: { entry: { index: "src/index.ts" } },
  clean: true,
  target: "node22",
  sourcemap: true,
});
