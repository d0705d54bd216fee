import type { Server } from "node:http";
import { fileURLToPath } from "node:url";
import { loadHostConfig } from "./host-config.js";
import type { HostConfig } from "./host-config.js";
import { welcomeText } from "./start-sluice.js";
import type { RunningSluice, SluiceHostOptions } from "./start-sluice.js";

interface ListeningApp {
  listen(port: number, host: string, callback: () => void): Server;
}

/**
 * Starts an example host from the environment: the config from `SLUICE_CONFIG` (default: the
 * sample beside the examples), the port from `PORT` (default 8080), on loopback. With
 * `DATABASE_URL` (and `SLUICE_SECRET_KEY`), the state lives in that PostgreSQL database, shared
 * with every instance started on it; in memory otherwise. Prints where the API is and how to call
 * it; stops cleanly on SIGINT and SIGTERM.
 */
export async function runExampleHost(
  createHost: (config: HostConfig, options: SluiceHostOptions) => Promise<{ app: ListeningApp; sluice: RunningSluice }>,
): Promise<void> {
  const configPath = process.env.SLUICE_CONFIG ?? fileURLToPath(new URL("../../sluice.config.json", import.meta.url));
  const port = Number(process.env.PORT ?? 8080);
  const config = await loadHostConfig(configPath);
  const { app, sluice } = await createHost(config, {
    publicBaseUrl: `http://127.0.0.1:${port}`,
    // With DATABASE_URL, the state lives in PostgreSQL, shared by every instance started on it.
    ...(process.env.DATABASE_URL ? { databaseUrl: process.env.DATABASE_URL } : {}),
    ...(process.env.SLUICE_SECRET_KEY ? { secretKey: process.env.SLUICE_SECRET_KEY } : {}),
  });
  const server = app.listen(port, "127.0.0.1", () => {
    const model = config.demoUpstream ? "alice:demo/demo-chat" : undefined;
    process.stdout.write(`${welcomeText({ port, basePath: config.basePath, managementPath: config.managementPath, sluice, ...(model ? { model } : {}) })}\n`);
  });
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      server.close();
      void sluice.close().then(() => process.exit(0));
    });
  }
}
