import { fork } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, statSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createSecretBox } from "@sluice/core";
import { startFakeUpstream } from "@sluice/core/testing";
import type { FakeControl, FakeUpstream } from "@sluice/core/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresStores } from "./postgres-stores.js";
import type { PostgresStores } from "./postgres-stores.js";
import { createTestDatabase } from "./testing/test-database.js";
import type { TestDatabase } from "./testing/test-database.js";

// Three gateway instances as a deployment runs them: separate processes (src/testing/
// gateway-instance.mjs, on the built packages), one database, one upstream (the fake, in this
// process). Every price is 1 µ$ per token and every request body has the same size, so each
// request's worst case, reserved before the upstream call, is exactly `body bytes + max_tokens`.

const packagesDirectory = fileURLToPath(new URL("../../", import.meta.url));
const instanceScript = fileURLToPath(new URL("./testing/gateway-instance.mjs", import.meta.url));

const BODY_BYTES = 400;
const MAX_TOKENS = 16;
const WORST_CASE = BODY_BYTES + MAX_TOKENS;
const model = "olivia:fake/fake-chat";

/** Reservations of the three instances outlive every test; the instance killed mid-stream has its own, short one. */
const LONG_LEASE_MS = 60_000;
const SHORT_LEASE_MS = 2_000;

interface Instance {
  name: string;
  port: number;
  child: ChildProcess;
  createdKeys: Array<{ userId: string; name: string; secret: string }>;
}

let database: TestDatabase;
let upstream: FakeUpstream;
/** This process's own view of the database, for balances, usage and key ids. */
let stores: PostgresStores;
let instances: Instance[] = [];
const secretKey = randomBytes(32).toString("base64");
const keys = new Map<string, string>();

beforeAll(async () => {
  requireBuiltPackages();
  database = await createTestDatabase();
  upstream = await startFakeUpstream({ models: ["fake-chat"] });
  stores = createPostgresStores({ pool: database.createPool(), secretBox: createSecretBox({ key: secretKey }) });
  // All three start at once, each migrating and applying the same organization: they take turns.
  instances = await Promise.all(["A", "B", "C"].map((name) => startInstance(name, LONG_LEASE_MS)));
  for (const instance of instances) for (const key of instance.createdKeys) keys.set(key.name, key.secret);
}, 60_000);

afterAll(async () => {
  await Promise.all(instances.map((instance) => stopInstance(instance)));
  await stores?.close();
  await upstream?.close();
  await database?.close();
});

describe("gateway instances on one database", () => {
  it("seeds the organization once, though all three applied it at the same moment", () => {
    const created = instances.flatMap((instance) => instance.createdKeys.map((key) => key.name)).sort();
    expect(created).toEqual(["lease", "revoked", "thirty"]);
  });

  it("serves exactly the 30 of 300 concurrent streams that the allocation fits, and refuses the rest with 402", async () => {
    upstream.reset();
    // Held at the upstream until every refusal is in: the 30 reservations overlap all 270 tries.
    const body = chatBody({ gate: "thirty", chunks: MAX_TOKENS, intervalMs: 5 });
    let answered = 0;
    const replies = Array.from({ length: 300 }, (_, index) =>
      send({
        port: instances[index % 3]!.port,
        path: "/v1/chat/completions",
        headers: { authorization: `Bearer ${keys.get("thirty")}` },
        body,
        onResponse: () => (answered += 1),
      }),
    );
    await until(() => answered + upstream.requests.length === 300, 20_000, "every request answered or at the upstream");
    upstream.openGate("thirty");
    const settled = await Promise.all(replies);

    const served = settled.filter((reply) => reply.status === 200);
    const refused = settled.filter((reply) => reply.status === 402);
    expect(served).toHaveLength(30);
    expect(refused).toHaveLength(270);
    for (const reply of served) expect(reply.body.endsWith("data: [DONE]\n\n")).toBe(true);
    for (const reply of refused) expect(JSON.parse(reply.body).error.code).toBe("allocation_exhausted");
    // Every instance refused some: each saw the budget the others had taken.
    for (const index of [0, 1, 2]) expect(settled.filter((reply, at) => at % 3 === index && reply.status === 402).length).toBeGreaterThan(0);

    // Each commit lands just after its stream's last byte.
    await until(async () => (await stores.ledger.getAllocation("alc_thirty"))!.reserved === 0, 5_000, "reservations settled");
    const balance = (await stores.ledger.getAllocation("alc_thirty"))!;
    const usage = await stores.ledger.usage({ from: 0, to: Date.now() + 1, allocationIds: ["alc_thirty"] });
    expect(usage.totals.requests).toBe(30);
    expect(balance.spent).toBe(usage.totals.cost);
    expect(balance.spent).toBeGreaterThan(0);
    expect(balance.spent).toBeLessThanOrEqual(30 * WORST_CASE);
    expect(await reservationRows("alc_thirty")).toBe(0);
  });

  it("refuses a key revoked through instance A on instance B within a second", async () => {
    const [a, b, c] = instances as [Instance, Instance, Instance];
    const secret = keys.get("revoked")!;
    const [key] = await stores.keys.list({ userId: "ulrich", nameContains: "revoked" });
    // B and C have verified the key, and cache the answer (for a minute: only a notice can end it).
    for (const instance of [b, c, b, c]) expect((await listModels(instance, secret)).status).toBe(200);

    const revoked = await send({
      port: a.port,
      method: "DELETE",
      path: `/api/ai/keys/${key!.id}`,
      headers: { "x-sluice-test-user": "ulrich" },
    });
    expect(revoked.status).toBe(200);
    const revokedAt = performance.now();

    let elapsed = Number.POSITIVE_INFINITY;
    while (performance.now() - revokedAt < 2_000) {
      if ((await listModels(b, secret)).status === 401) {
        elapsed = performance.now() - revokedAt;
        break;
      }
      await sleep(50);
    }
    expect(elapsed).toBeLessThan(1_000);
    expect((await listModels(c, secret)).status).toBe(401);
  });

  it("lets the reservations of an instance killed mid-stream lapse with their lease, freeing the budget", async () => {
    upstream.reset();
    const doomed = await startInstance("D", SHORT_LEASE_MS);
    instances.push(doomed);
    const secret = keys.get("lease")!;
    // Five streams that fill the allocation (five worst cases) and then hang mid-stream.
    let streaming = 0;
    const hanging = Array.from({ length: 5 }, () =>
      send({
        port: doomed.port,
        path: "/v1/chat/completions",
        headers: { authorization: `Bearer ${secret}` },
        body: chatBody({ chunks: MAX_TOKENS, hangAfterChunks: 2 }),
        onData: (() => {
          let counted = false;
          return () => {
            if (!counted) streaming += 1;
            counted = true;
          };
        })(),
      }).catch(() => null),
    );
    await until(() => streaming === 5, 10_000, "five streams under way");
    expect((await stores.ledger.getAllocation("alc_lease"))!.reserved).toBe(5 * WORST_CASE);

    doomed.child.kill("SIGKILL");
    await exited(doomed.child);
    await Promise.all(hanging);
    const [a, b] = instances as [Instance, Instance];
    // The dead instance's holds still count (nothing could release them) until their lease ends.
    const refusedMeanwhile = await send({
      port: a.port,
      path: "/v1/chat/completions",
      headers: { authorization: `Bearer ${secret}` },
      body: chatBody({ chunks: 2 }),
    });
    const leaseEnds = await latestExpiry("alc_lease");
    if (Date.now() < leaseEnds) expect(refusedMeanwhile.status).toBe(402);

    await sleep(Math.max(0, leaseEnds - Date.now()) + 20);
    expect((await stores.ledger.getAllocation("alc_lease"))!.reserved).toBe(0);
    // The whole budget again, on the surviving instances.
    const again = await Promise.all(
      Array.from({ length: 5 }, (_, index) =>
        send({
          port: (index % 2 === 0 ? a : b).port,
          path: "/v1/chat/completions",
          headers: { authorization: `Bearer ${secret}` },
          body: chatBody({ chunks: 2 }),
        }),
      ),
    );
    expect(again.map((reply) => reply.status)).toEqual([200, 200, 200, 200, 200]);
    await until(async () => (await stores.ledger.getAllocation("alc_lease"))!.reserved === 0, 5_000, "reservations settled");
    // The reserves deleted the lapsed rows (and the sweep finds nothing left).
    expect(await reservationRows("alc_lease")).toBe(0);
    expect(await stores.ledger.sweepExpired()).toBe(0);
  });
});

/** The built entry points the instances load; fails with the fix when they are missing or stale. */
function requireBuiltPackages(): void {
  for (const name of ["core", "adapter-openai-compat", "store-postgres"]) {
    const entry = join(packagesDirectory, name, "dist", "index.js");
    if (!existsSync(entry)) {
      throw new Error(`The gateway instances run the built packages, and ${entry} is missing: run \`npm run build\` first.`);
    }
    const newest = newestSource(join(packagesDirectory, name, "src"));
    if (newest !== null && newest.mtimeMs > statSync(entry).mtimeMs) {
      throw new Error(`The gateway instances run the built packages, and ${newest.path} is newer than ${entry}: run \`npm run build\` first.`);
    }
  }
}

/** The most recently changed source file that goes into a package's main entry (tests and testing/ do not). */
function newestSource(directory: string): { path: string; mtimeMs: number } | null {
  let newest: { path: string; mtimeMs: number } | null = null;
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) {
      if (entry.name === "testing" || entry.name === "__fixtures__") continue;
      const inner = newestSource(path);
      if (inner !== null && (newest === null || inner.mtimeMs > newest.mtimeMs)) newest = inner;
    } else if (entry.name.endsWith(".ts") && !/\.test(-d)?\.ts$/.test(entry.name)) {
      const { mtimeMs } = statSync(path);
      if (newest === null || mtimeMs > newest.mtimeMs) newest = { path, mtimeMs };
    }
  }
  return newest;
}

function organization() {
  const team = { type: "group", groupId: "team" };
  return {
    users: [{ id: "olivia" }, { id: "ulrich" }],
    groups: [{ id: "team", name: "Team", members: ["ulrich"] }],
    allocations: [
      { id: "alc_thirty", name: "Fits thirty", owner: team, limit: 30 * WORST_CASE },
      { id: "alc_lease", name: "Fits five", owner: team, limit: 5 * WORST_CASE },
      { id: "alc_open", name: "Open", owner: team, limit: 1_000_000_000 },
    ],
    providers: [
      {
        owner: "olivia",
        name: "fake",
        kind: "openai-compatible",
        settings: { endpoint: upstream.chatCompletionsUrl, models: ["fake-chat"] },
        grants: [team],
      },
    ],
    prices: [{ provider: "olivia:fake", model: "*", input: 1_000_000, output: 1_000_000 }],
    keys: [
      { userId: "ulrich", name: "thirty", allocationId: "alc_thirty" },
      { userId: "ulrich", name: "lease", allocationId: "alc_lease" },
      { userId: "ulrich", name: "revoked", allocationId: "alc_open" },
    ],
  };
}

function startInstance(name: string, leaseMs: number): Promise<Instance> {
  const settings = {
    databaseUrl: database.connectionString,
    secretKey,
    organization: organization(),
    leaseMs,
    // Far longer than any test: a fresh answer on another instance can only come from a notice.
    cacheTtlMs: 60_000,
  };
  const environment: NodeJS.ProcessEnv = { ...process.env, SLUICE_TEST_INSTANCE: JSON.stringify(settings) };
  delete environment.NODE_OPTIONS;
  // No execArgv: vitest's workers run with `--conditions=@sluice/source`, which would point the
  // instance at TypeScript sources.
  const child = fork(instanceScript, [], { env: environment, execArgv: [], stdio: ["ignore", "ignore", "pipe", "ipc"] });
  let errors = "";
  child.stderr?.on("data", (chunk: Buffer) => (errors = (errors + chunk.toString("utf8")).slice(-4_000)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`instance ${name} did not start within 30 s:\n${errors}`));
    }, 30_000);
    child.once("message", (message: { type: string; port: number; createdKeys: Instance["createdKeys"] }) => {
      clearTimeout(timer);
      resolve({ name, port: message.port, child, createdKeys: message.createdKeys });
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`instance ${name} exited (${code ?? signal}) before listening:\n${errors}`));
    });
  });
}

async function stopInstance(instance: Instance): Promise<void> {
  const { child } = instance;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const force = setTimeout(() => child.kill("SIGKILL"), 5_000);
  child.kill("SIGTERM");
  await exited(child);
  clearTimeout(force);
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/** A chat request body of exactly BODY_BYTES bytes (the prompt is padded), so every worst case is WORST_CASE. */
function chatBody(fake: FakeControl): string {
  const build = (content: string) =>
    JSON.stringify({ model, stream: true, max_tokens: MAX_TOKENS, messages: [{ role: "user", content }], fake });
  const base = build("Count, please.");
  const padding = BODY_BYTES - Buffer.byteLength(base);
  if (padding < 0) throw new Error(`a request body is over ${BODY_BYTES} bytes`);
  return build(`Count, please.${" ".repeat(padding)}`);
}

interface Reply {
  status: number;
  body: string;
}

/** One request on a connection of its own; rejects when the connection breaks. */
function send(input: {
  port: number;
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  onResponse?: (status: number) => void;
  onData?: () => void;
}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...input.headers };
    if (input.body !== undefined) headers["content-type"] = "application/json";
    const request = httpRequest(
      { host: "127.0.0.1", port: input.port, method: input.method ?? "POST", path: input.path, headers, agent: false },
      (response) => {
        const status = response.statusCode ?? 0;
        input.onResponse?.(status);
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => {
          body += chunk;
          input.onData?.();
        });
        response.on("end", () => resolve({ status, body }));
        response.on("error", reject);
      },
    );
    request.on("error", reject);
    request.end(input.body);
  });
}

function listModels(instance: Instance, secret: string): Promise<Reply> {
  return send({ port: instance.port, method: "GET", path: "/v1/models", headers: { authorization: `Bearer ${secret}` } });
}

async function reservationRows(allocationId: string): Promise<number> {
  const result = await database.pool.query<{ count: string }>("SELECT count(*) AS count FROM sluice_reservations WHERE allocation_id = $1", [
    allocationId,
  ]);
  return Number(result.rows[0]!.count);
}

/** When the last of the allocation's reservations lapses (epoch ms), or now when it holds none. */
async function latestExpiry(allocationId: string): Promise<number> {
  const result = await database.pool.query<{ latest: string | null }>(
    "SELECT max(expires_at) AS latest FROM sluice_reservations WHERE allocation_id = $1",
    [allocationId],
  );
  return result.rows[0]!.latest === null ? Date.now() : Number(result.rows[0]!.latest);
}

async function until(check: () => boolean | Promise<boolean>, withinMs: number, what: string): Promise<void> {
  const deadline = performance.now() + withinMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`not within ${withinMs} ms: ${what}`);
    await sleep(10);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
