/**
 * Shared setup for this package's tests: a real gateway on loopback (createGateway, the node:http
 * handler and the memory stores) with the tunnel adapter and hub mounted, and real agent processes
 * (the built CLI) in front of fake model servers. Not exported from the package.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, statSync } from "node:fs";
import { createServer } from "node:http";
import type { Server } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createEventBus, createGateway, createNodeHandler, createPriceBook, createSecretBox } from "@sluice/core";
import type { Gateway, ProviderRecord, SluiceEventBus, SluiceStores } from "@sluice/core";
import { createMemoryStores } from "@sluice/store-memory";
import { Agent, request } from "undici";
import type { TunnelDirectory } from "./tunnel-directory.js";
import { createTunnelHub } from "./hub/tunnel-hub.js";
import type { TunnelHub, TunnelHubOptions } from "./hub/tunnel-hub.js";
import { createMemoryTunnelTokenStore } from "./hub/tunnel-token-store.js";
import { createTunnelProviders } from "./tunnel-providers.js";
import type { TunnelProviders } from "./tunnel-providers.js";

const packageRoot = fileURLToPath(new URL("..", import.meta.url));
export const cliPath = join(packageRoot, "dist", "bin", "sluice-tunnel.js");
export const basePath = "/api/openai/v1";
export const hubPath = "/api/openai/tunnel";

/**
 * The tests run the agent as a real process, from the built CLI. Fails with what to do when the
 * build is missing or older than the agent's sources.
 */
export function assertAgentBuilt(): void {
  const rebuild = "Run `npm run build` at the repository root (or `cd packages/adapter-tunnel && npx tsup`) first; `npm test` does it for you.";
  if (!existsSync(cliPath)) throw new Error(`The tunnel agent CLI is not built (${cliPath} is missing). ${rebuild}`);
  const builtAt = statSync(cliPath).mtimeMs;
  const sources = ["agent", "protocol", "bin"].flatMap((folder) =>
    readdirSync(join(packageRoot, "src", folder)).map((file) => join(packageRoot, "src", folder, file)),
  );
  const stale = sources.filter((file) => !file.endsWith(".test.ts") && statSync(file).mtimeMs > builtAt);
  if (stale.length > 0) throw new Error(`The tunnel agent CLI is older than ${stale[0]}. ${rebuild}`);
}

export interface TestUser {
  id: string;
  /** An AI key for the gateway. */
  key: string;
}

export interface World {
  stores: SluiceStores;
  events: SluiceEventBus;
  gateway: Gateway;
  tunnels: TunnelProviders;
  /** The hub, when the world runs reverse tunnels. */
  hub: TunnelHub;
  directory: TunnelDirectory;
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** The agent's `--gateway` URL. */
  hubUrl: string;
  alice: TestUser;
  bob: TestUser;
  /** An org admin, who must see no tunnel but their own. */
  carol: TestUser;
  allocationId: string;
  http: Agent;
  close(): Promise<void>;
}

export async function startWorld(
  options: { hub?: Partial<TunnelHubOptions>; directory?: TunnelDirectory; tls?: { key: Buffer; cert: Buffer } } = {},
): Promise<World> {
  const events = createEventBus();
  const stores = createMemoryStores({ secretBox: createSecretBox({ key: randomBytes(32) }), events });
  const hub = createTunnelHub({ tokens: createMemoryTunnelTokenStore(), path: hubPath, ...options.hub });
  const directory = options.directory ?? hub;
  const tunnels = createTunnelProviders({ catalog: stores.catalog, directory });
  const gateway = createGateway({
    stores,
    adapters: [tunnels.adapter],
    events,
    prices: createPriceBook({ fallback: { input: 1_000_000, output: 2_000_000 } }),
  });
  const handler = createNodeHandler(gateway, { basePath });
  const server: Server =
    options.tls === undefined
      ? createServer((incoming, outgoing) => handler(incoming, outgoing))
      : createTlsServer(options.tls, (incoming, outgoing) => handler(incoming, outgoing));
  hub.attach(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `${options.tls === undefined ? "http" : "https"}://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const allocation = await stores.ledger.createAllocation({ name: "research", owner: { type: "organization" }, limit: 1_000_000_000 });
  const user = async (id: string): Promise<TestUser> => {
    await stores.permissions.upsertUser({ id });
    const { secret } = await stores.keys.create({ userId: id, name: `${id}'s key`, allocationId: allocation.id });
    return { id, key: secret };
  };
  const alice = await user("alice");
  const bob = await user("bob");
  const carol = await user("carol");
  await stores.permissions.setRole({ userId: "carol", role: "org:admin", enabled: true });
  const http = new Agent({ connections: 256, ...(options.tls === undefined ? {} : { connect: { ca: options.tls.cert } }) });

  return {
    stores,
    events,
    gateway,
    tunnels,
    hub,
    directory,
    origin,
    hubUrl: `${origin}${hubPath}`,
    alice,
    bob,
    carol,
    allocationId: allocation.id,
    http,
    async close() {
      await tunnels.close();
      await hub.close();
      if (directory !== hub) await directory.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await gateway.close();
      await http.close();
      await stores.close();
    },
  };
}

export interface AgentProcess {
  child: ChildProcess;
  /** Everything the agent printed so far. */
  output(): string;
  /** Resolves once the process exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends a signal; resolves once the process exited (immediately for SIGSTOP/SIGCONT). */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const agents = new Set<AgentProcess>();

/** Starts `sluice-tunnel` as its own process. Killed by `stopAgents()` if still running. */
export function spawnAgent(input: {
  hubUrl: string;
  token: string;
  target: string;
  name?: string;
  args?: string[];
  env?: Record<string, string>;
}): AgentProcess {
  const args = [cliPath, "--gateway", input.hubUrl, "--token", input.token, "--target", input.target];
  if (input.name !== undefined) args.push("--name", input.name);
  // Short waits, so reconnects in tests take milliseconds.
  args.push("--reconnect-initial", "100", "--reconnect-max", "1000", ...(input.args ?? []));
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...input.env } });
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
  });
  const agent: AgentProcess = {
    child,
    output: () => output,
    exited,
    async kill(signal = "SIGKILL") {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      if (signal !== "SIGSTOP" && signal !== "SIGCONT") await exited;
    },
  };
  agents.add(agent);
  void exited.then(() => agents.delete(agent));
  return agent;
}

export async function stopAgents(): Promise<void> {
  await Promise.all(
    [...agents].map(async (agent) => {
      agent.child.kill("SIGCONT");
      await agent.kill("SIGKILL");
    }),
  );
}

/** Polls until `check` holds; throws with `what` after `timeoutMs`. */
export async function waitUntil(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<number> {
  const startedAt = Date.now();
  for (;;) {
    if (await check()) return Date.now() - startedAt;
    if (Date.now() - startedAt > timeoutMs) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}.`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Waits until the provider record exists with that status. */
export async function waitForStatus(world: World, providerId: string, status: ProviderRecord["status"], timeoutMs = 5_000): Promise<number> {
  return waitUntil(async () => (await world.stores.catalog.get(providerId))?.status === status, `${providerId} to be ${status}`, timeoutMs);
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

export async function send(
  world: World,
  input: { key: string; method?: "GET" | "POST"; path: string; body?: unknown; signal?: AbortSignal },
): Promise<Reply> {
  const method = input.method ?? (input.body === undefined ? "GET" : "POST");
  const response = await request(`${world.origin}${basePath}${input.path}`, {
    method,
    dispatcher: world.http,
    headers: { authorization: `Bearer ${input.key}`, "content-type": "application/json" },
    ...(input.body === undefined ? {} : { body: JSON.stringify(input.body) }),
    ...(input.signal === undefined ? {} : { signal: input.signal }),
  });
  return { status: response.statusCode, headers: response.headers, text: await response.body.text() };
}

export function json(reply: Reply): Record<string, unknown> {
  return JSON.parse(reply.text) as Record<string, unknown>;
}

/** The reply text of an SSE chat stream: every chunk's `delta.content`, in order. */
export function streamedText(raw: string): { text: string; done: boolean; errors: unknown[] } {
  let text = "";
  let done = false;
  const errors: unknown[] = [];
  for (const event of raw.split("\n\n")) {
    if (!event.startsWith("data: ")) continue;
    const data = event.slice(6);
    if (data === "[DONE]") {
      done = true;
      continue;
    }
    const parsed = JSON.parse(data) as { error?: unknown; choices?: Array<{ delta?: { content?: unknown } }> };
    if (parsed.error !== undefined) errors.push(parsed.error);
    for (const choice of parsed.choices ?? []) if (typeof choice.delta?.content === "string") text += choice.delta.content;
  }
  return { text, done, errors };
}

export const messages = [{ role: "user", content: "Say something about sluices." }];
