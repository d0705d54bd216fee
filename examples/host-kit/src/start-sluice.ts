import { randomBytes } from "node:crypto";
import { createOpenAICompatAdapter } from "@sluice/adapter-openai-compat";
import { applyOrganizationConfig, createEventBus, createGateway, createPriceBook, createSecretBox, preloadTokenizer } from "@sluice/core";
import type { Clock, Gateway, GatewayOptions, IdentifyInput, HostIdentity, SluiceEventBus, SluiceStores } from "@sluice/core";
import { startFakeUpstream } from "@sluice/core/testing";
import { createMemoryStores } from "@sluice/store-memory";
import type { HostConfig } from "./host-config.js";

export interface RunningSluice {
  gateway: Gateway;
  stores: SluiceStores;
  events: SluiceEventBus;
  /** Secrets of the keys the config seeded, shown once at start. */
  createdKeys: Array<{ userId: string; name: string; secret: string }>;
  /** The demo upstream's base URL, when one was started. */
  demoUpstreamUrl: string | null;
  close(): Promise<void>;
}

/** The gateway's tuning knobs a host may set: body limit, output cap, lease, timeouts, retry. */
export type HostGatewayOptions = Pick<
  GatewayOptions,
  "maxBodyBytes" | "defaultMaxOutputTokens" | "reservationLeaseMs" | "timeouts" | "retry"
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
}

/**
 * Builds a gateway on the in-memory store from a host config: starts the demo upstream when
 * asked, seeds the organization, and wires the OpenAI-compatible adapter and the prices.
 */
export async function startSluice(
  options: SluiceHostOptions & {
    config: HostConfig;
    identify?: (input: IdentifyInput) => HostIdentity | null;
    /** 32 bytes; a fresh one when absent (the memory store forgets everything on exit anyway). */
    secretKey?: string;
  },
): Promise<RunningSluice> {
  const events = createEventBus();
  const stores = createMemoryStores({
    secretBox: createSecretBox({ key: options.secretKey ?? randomBytes(32) }),
    events,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  // The demo upstream runs as long as the host: it must not keep a record of every request.
  const demo = options.config.demoUpstream
    ? await startFakeUpstream({ record: false, models: ["demo-chat", "demo-embed"] })
    : null;
  const organization = demo
    ? JSON.parse(JSON.stringify(options.config.organization).replaceAll("${DEMO_UPSTREAM}", demo.url))
    : options.config.organization;
  const applied = await applyOrganizationConfig({ stores, config: organization });
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
    createdKeys: applied.createdKeys,
    demoUpstreamUrl: demo?.url ?? null,
    async close() {
      await gateway.close();
      await demo?.close();
      await stores.close();
    },
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
  if (input.sluice.demoUpstreamUrl) {
    lines.push(`  demo upstream (an OpenAI-compatible server): ${input.sluice.demoUpstreamUrl}/v1/chat/completions`);
  }
  for (const key of input.sluice.createdKeys) lines.push(`  key '${key.name}' for ${key.userId}: ${key.secret}`);
  const first = input.sluice.createdKeys[0];
  if (first) {
    lines.push("", "Try it:", `  curl -N ${base}/chat/completions \\`);
    lines.push(`    -H 'Authorization: Bearer ${first.secret}' -H 'Content-Type: application/json' \\`);
    lines.push(`    -d '{"model":"${input.model ?? "<a model id from /models>"}","stream":true,"messages":[{"role":"user","content":"Hello!"}]}'`);
    lines.push(`  curl ${base}/models -H 'Authorization: Bearer ${first.secret}'`);
  }
  return lines.join("\n");
}
