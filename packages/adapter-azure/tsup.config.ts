import { defineConfig } from "tsup";

export default defineConfig({
  entry: { index: "src/index.ts" },
  format: ["esm"],
  dts: true,
  clean: true,
  target: "node22",
  sourcemap: true,
  // zod is the same dependency @sluice/core validates with: import it, never bundle a second copy.
  external: ["zod"],
});
