import pg from "pg";
import { migrate } from "./migrate.js";

const usage = `Usage: sluice-postgres migrate

Applies Sluice's schema migrations to the database named by DATABASE_URL (a postgres:// URL).
Safe to run from several places at once: runs are serialized by an advisory lock.
`;

export interface CliIo {
  env: Record<string, string | undefined>;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

/** Runs the command line `args` (without node and the script) and resolves the exit code. */
export async function runCli(args: readonly string[], io: CliIo): Promise<number> {
  const [command, ...rest] = args;
  if (command === "--help" || command === "-h" || command === "help") {
    io.stdout(usage);
    return 0;
  }
  if (command !== "migrate" || rest.length > 0) {
    io.stderr(usage);
    return 2;
  }
  const connectionString = io.env.DATABASE_URL;
  if (connectionString === undefined || connectionString === "") {
    io.stderr("sluice-postgres: set DATABASE_URL to the database to migrate (postgres://user:password@host/db).\n");
    return 2;
  }
  const pool = new pg.Pool({ connectionString, max: 1 });
  pool.on("error", () => undefined);
  try {
    const result = await migrate({ pool });
    io.stdout(
      result.applied.length === 0
        ? `sluice-postgres: schema already at version ${result.version}; nothing to apply.\n`
        : `sluice-postgres: applied ${result.applied.join(", ")}; schema at version ${result.version}.\n`,
    );
    return 0;
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : "";
    io.stderr(`sluice-postgres: ${error instanceof Error ? error.message : String(error)}${cause}\n`);
    return 1;
  } finally {
    await pool.end();
  }
}
