import { randomBytes } from "node:crypto";
import { createOpenAICompatAdapter } from "@sluice/adapter-openai-compat";
import {
  applyOrganizationConfig,
  createEventBus,
  createGateway,
  createPriceBook,
  createSecretBox,
  organizationConfigSchema,
  parseInput,
  preloadTokenizer,
} from "@sluice/core";
import type { Clock, Gateway, GatewayOptions, IdentifyInput, HostIdentity, SluiceEventBus, SluiceStores } from "@sluice/core";
import { startFakeUpstream } from "@sluice/core/testing";
import { createMemoryStores } from "@sluice/store-memory";
import type { HostConfig } from "./host-config.js";

export interface RunningSluice {
  gateway: Gateway;
  stores: SluiceStores;
  events: SluiceEventBus;
  /** Where the state lives: in this process, or in the PostgreSQL database every instance shares. */
  storage: "memory" | "postgres";
  /** Secrets of the keys the config seeded, shown once at start. */
  createdKeys: Array<{ userId: string; name: string; secret: string }>;
  /**
   * The config's keys that already existed (a shared database, seeded by an earlier start or by
   * another instance): their secrets were shown once, by whoever created them, and never again.
   */
  existingKeys: Array<{ userId: string; name: string }>;
  /** The demo upstream's base URL, when one was started. */
  demoUpstreamUrl: string | null;
  close(): Promise<void>;
}

/** The gateway's tuning knobs a host may set: body limit, output cap, file allowance, lease, timeouts, retry. */
export type HostGatewayOptions = Pick<
  GatewayOptions,
  "maxBodyBytes" | "defaultMaxOutputTokens" | "fileTokenAllowance" | "reservationLeaseMs" | "sweepIntervalMs" | "timeouts" | "retry"
>;

/** What a host may pass to `startSluice` beside its config (the example hosts forward it). */
export interface SluiceHostOptions {
  /** Passed through to `createGateway`. */
  gateway?: HostGatewayOptions;
  /** The clock of the stores and the gateway; the system clock when absent (tests pass a manual one). */
  clock?: Clock;
  /**
   * The origin clients reach the host at (`http://127.0.0.1:8080`), for the management API's
   * connect snippets; without it they use the origin each request came to.
   */
  publicBaseUrl?: string;
  /**
   * A PostgreSQL connection string: the state (providers, keys, budgets, usage) then lives in that
   * database, shared by every instance started on it, and the schema is migrated at start. The
   * in-memory store when absent. (The example hosts read it from `DATABASE_URL`.)
   */
  databaseUrl?: string;
  /**
   * The key that seals provider secrets: 32 bytes, base64 or hex. Required with `databaseUrl`,
   * the same on every instance, so each opens the secrets the others sealed. With the memory
   * store, a fresh one when absent (it forgets everything on exit anyway).
   */
  secretKey?: string;
}

/**
 * Builds a gateway from a host config, on the in-memory store or on PostgreSQL (`databaseUrl`):
 * starts the demo upstream when asked, seeds the organization, and wires the OpenAI-compatible
 * adapter and the prices.
 */
export async function startSluice(
  options: SluiceHostOptions & {
    config: HostConfig;
    identify?: (input: IdentifyInput) => HostIdentity | null;
  },
): Promise<RunningSluice> {
  const events = createEventBus();
  const { stores, storage, alone } = await openStores({ ...options, events });
  // The demo upstream runs as long as the host: it must not keep a record of every request.
  const demo = options.config.demoUpstream
    ? await startFakeUpstream({ record: false, models: ["demo-chat", "demo-embed"] })
    : null;
  const organization = demo
    ? JSON.parse(JSON.stringify(options.config.organization).replaceAll("${DEMO_UPSTREAM}", demo.url))
    : options.config.organization;
  // Applying the config twice changes nothing, but instances that start together on one database
  // would race to create the same allocations, providers and keys (each race's loser gets a 409):
  // they take turns instead, and the later ones find everything in place.
  const applied = await alone(() => applyOrganizationConfig({ stores, config: organization })).catch(async (error: unknown) => {
    await demo?.close();
    await stores.close();
    throw error;
  });
  const created = new Set(applied.createdKeys.map((key) => `${key.userId}\n${key.name}`));
  const existingKeys = parseInput(organizationConfigSchema, organization, "organization config")
    .keys.filter((key) => !created.has(`${key.userId}\n${key.name}`))
    .map((key) => ({ userId: key.userId, name: key.name }));
  // Every stream a client abandons is metered by counting its prompt (the upstream's usage never
  // arrives), and loading the tokenizer blocks the event loop for about 250 ms: pay that here,
  // not in the middle of traffic, where it would stall every other stream.
  await preloadTokenizer();
  const gateway = createGateway({
    ...options.gateway,
    stores,
    adapters: [createOpenAICompatAdapter()],
    prices: createPriceBook({ prices: applied.prices }),
    events,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.identify ? { identify: options.identify } : {}),
    management: {
      openAIBasePath: options.config.basePath,
      ...(options.publicBaseUrl ? { publicBaseUrl: options.publicBaseUrl } : {}),
    },
  });
  return {
    gateway,
    stores,
    events,
    storage,
    createdKeys: applied.createdKeys,
    existingKeys,
    demoUpstreamUrl: demo?.url ?? null,
    async close() {
      await gateway.close();
      await demo?.close();
      await stores.close();
    },
  };
}

interface HostStores {
  stores: SluiceStores;
  storage: RunningSluice["storage"];
  /** Runs a start-up step while no other instance on the same stores runs one. */
  alone<Result>(work: () => Promise<Result>): Promise<Result>;
}

/** The PostgreSQL stores at `databaseUrl`, their schema migrated; else the in-memory ones. */
async function openStores(options: SluiceHostOptions & { events: SluiceEventBus }): Promise<HostStores> {
  const clock = options.clock ? { clock: options.clock } : {};
  if (!options.databaseUrl) {
    const secretBox = createSecretBox({ key: options.secretKey ?? randomBytes(32) });
    return { stores: createMemoryStores({ secretBox, events: options.events, ...clock }), storage: "memory", alone: (work) => work() };
  }
  if (!options.secretKey) {
    throw new Error(
      "A shared database needs a stable secret key (SLUICE_SECRET_KEY for the example hosts): 32 bytes, base64 or hex, " +
        "for example `openssl rand -base64 32`. Give every instance the same one: each must open the provider secrets the others sealed.",
    );
  }
  // Loaded only here, so a host on the in-memory store never loads pg.
  const { createPostgresStores, withAdvisoryLock } = await import("@sluice/store-postgres");
  const stores = createPostgresStores({
    connectionString: options.databaseUrl,
    secretBox: createSecretBox({ key: options.secretKey }),
    events: options.events,
    ...clock,
  });
  try {
    // Safe when several instances start at once: migrations take turns on an advisory lock too.
    await stores.migrate();
  } catch (error) {
    await stores.close();
    throw new Error(`Could not prepare Sluice's tables in the database at DATABASE_URL: ${(error as Error).message}`, { cause: error });
  }
  return {
    stores,
    storage: "postgres",
    alone: (work) => withAdvisoryLock({ pool: stores.pool, name: "sluice-example-host:apply-organization-config" }, work),
  };
}

/** What a host prints at start: where the API is, and how to call it with a seeded key. */
export function welcomeText(input: {
  port: number;
  basePath: string;
  /** Where the management API is mounted; printed when given. */
  managementPath?: string;
  sluice: RunningSluice;
  model?: string;
}): string {
  const base = `http://127.0.0.1:${input.port}${input.basePath}`;
  const lines = [`Sluice is serving the OpenAI-compatible API at ${base}`];
  if (input.managementPath) {
    lines.push(`  management API (log in with POST /login first): http://127.0.0.1:${input.port}${input.managementPath}`);
  }
  lines.push(
    input.sluice.storage === "postgres"
      ? "  state: in the PostgreSQL database at DATABASE_URL, shared with every instance started on it"
      : "  state: in memory, gone on exit (set DATABASE_URL to keep it in PostgreSQL)",
  );
  if (input.sluice.demoUpstreamUrl) {
    lines.push(`  demo upstream (an OpenAI-compatible server): ${input.sluice.demoUpstreamUrl}/v1/chat/completions`);
    if (input.sluice.storage === "postgres") {
      // Every start writes its own demo upstream's address into the one shared provider record.
      lines.push("    (every instance sends the demo provider's requests to the demo upstream of the instance that started last)");
    }
  }
  for (const key of input.sluice.createdKeys) lines.push(`  key '${key.name}' for ${key.userId}: ${key.secret}`);
  for (const key of input.sluice.existingKeys) {
    lines.push(`  key '${key.name}' for ${key.userId}: already in the database; its secret was printed once, by the start that created it`);
  }
  if (input.sluice.createdKeys.length === 0 && input.sluice.existingKeys.length > 0) {
    lines.push("  (use a secret printed then, or create a key: log in with POST /login, then POST to the management API's /keys)");
  }
  const first = input.sluice.createdKeys[0];
  if (first) {
    lines.push("", "Try it:", `  curl -N ${base}/chat/completions \\`);
    lines.push(`    -H 'Authorization: Bearer ${first.secret}' -H 'Content-Type: application/json' \\`);
    lines.push(`    -d '{"model":"${input.model ?? "<a model id from /models>"}","stream":true,"messages":[{"role":"user","content":"Hello!"}]}'`);
    lines.push(`  curl ${base}/models -H 'Authorization: Bearer ${first.secret}'`);
  }
  return lines.join("\n");
}
