import { defineConfig } from "tsup";

export default defineConfig({
  entry: { server: "src/server.ts", app: "src/app.ts" },
  format: ["esm"],
  dts: false,
  clean: true,
  target: "node22",
  sourcemap: true,
});
