import { defineConfig } from "tsup";

export default defineConfig({
  // The library, and the agent CLI (its source starts with the #! line esbuild keeps). The CLI
  // imports only Node and undici, so it starts fast inside a session.
  entry: { index: "src/index.ts", "bin/sluice-tunnel": "src/bin/sluice-tunnel.ts" },
  format: ["esm"],
  dts: { entry: { index: "src/index.ts" } },
  clean: true,
  target: "node22",
  sourcemap: true,
});
