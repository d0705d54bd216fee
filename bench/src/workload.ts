/**
 * What every path is asked to do, and the settings the two proxies share, so the three paths
 * differ only in what sits between the client and the upstream.
 */
import type { ServerOptions } from "node:http";

/** The model the fake upstream serves. Sluice names it `<owner>:<provider>/fake-model`. */
export const upstreamModel = "fake-model";

/** Content chunks per response (one word each): the stream's length and the answer's tokens. */
export const contentChunks = 20;

/**
 * Upstream connections per origin, for the minimal proxy's Pool and Sluice's adapter alike. The
 * adapter's default (128) would queue streams 129 to 1,000 of the memory test inside undici.
 */
export const upstreamConnections = 1_024;

/** Both proxies listen with these; the client's Pool keeps its connections between cells. */
export const serverOptions: ServerOptions = { keepAlive: true, noDelay: true };
export const keepAliveTimeoutMs = 65_000;

export function upstreamFromEnvironment(): string {
  const url = process.env.BENCH_UPSTREAM_URL;
  if (url === undefined || url === "") throw new Error("BENCH_UPSTREAM_URL is not set");
  return url;
}

const systemPrompt =
  "You are a concise assistant for an engineering team. Answer in plain English, cite the relevant file when you can, and say so when you are not sure.";
const userPrompt =
  "Our Node service proxies chat completions to an internal model server. What should we measure before we add authentication, budgets and metering in front of it?";

/**
 * A chat-completion request as an OpenAI client sends it. Streams ask for usage on every path, so
 * the upstream does the same work whoever calls it (Sluice asks for it anyway, to meter). The
 * `fake` field steers the fake upstream; Sluice forwards it with the other unknown fields.
 */
export function chatRequestBody(options: { model: string; stream: boolean; hangAfterFirstChunk?: boolean }): string {
  const fake: Record<string, number> = { chunks: contentChunks };
  if (options.hangAfterFirstChunk === true) fake.hangAfterChunks = 1;
  return JSON.stringify({
    model: options.model,
    messages: [
      { role: "system", content: systemPrompt },
      { role: "user", content: userPrompt },
    ],
    max_tokens: 256,
    temperature: 0.2,
    ...(options.stream ? { stream: true, stream_options: { include_usage: true } } : {}),
    fake,
  });
}
