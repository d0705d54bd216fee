/**
 * Token counting with a real BPE tokenizer (o200k_base, the GPT-4o / GPT-4.1 / GPT-5 encoding),
 * for metering a request whose upstream reported no usage: TGI and older Ollama never do unless
 * asked, and a stream cut off mid-way never delivers its usage trailer.
 *
 * For models with other tokenizers (Llama, Qwen, Mistral behind vLLM, TGI, Ollama or llama.cpp)
 * the counts are an ESTIMATE: their vocabularies differ, typically by 10-30% on English text and
 * more on code or other languages. They are tagged `source: "counted"` in TokenUsage for that
 * reason.
 *
 * Loading the tokenizer's 2.4 MB rank table takes about 240 ms and 30 MB of heap (measured on
 * Node 24), so it is imported on first use: a gateway whose upstreams all report usage never pays
 * for it, and one that does pays once per process.
 */

interface Tokenizer {
  countTokens(text: string): number;
}

let tokenizerLoading: Promise<Tokenizer> | undefined;

function loadTokenizer(): Promise<Tokenizer> {
  tokenizerLoading ??= import("gpt-tokenizer/encoding/o200k_base").then(
    (encoding): Tokenizer => ({
      // User text may contain `<|endoftext|>` and the like: count it as the plain text it is
      // (tiktoken's encode_ordinary) instead of letting the tokenizer throw on a special token.
      countTokens: (text) => encoding.countTokens(text, { disallowedSpecial: plainTextOnly }),
    }),
    (error: unknown) => {
      // Let a later call try again rather than caching the failure for the process's lifetime.
      tokenizerLoading = undefined;
      throw error;
    },
  );
  return tokenizerLoading;
}

const plainTextOnly: Set<string> = new Set();

/**
 * Loads the tokenizer now. Module evaluation blocks the event loop for the load time above, so a
 * host that expects to count (upstreams without usage) can call this at startup instead of
 * stalling its first such request. It also counts a sample once: the first count builds the
 * encoder's caches and costs another ~20 ms, which would otherwise land on that request too.
 */
export async function preloadTokenizer(): Promise<void> {
  (await loadTokenizer()).countTokens("Sluice warms its tokenizer up once, at start.");
}

/** The number of o200k_base tokens in `text`; 0 for the empty string (without loading the tokenizer). */
export async function countTextTokens(text: string): Promise<number> {
  if (text.length === 0) return 0;
  const tokenizer = await loadTokenizer();
  return tokenizer.countTokens(text);
}

/**
 * OpenAI's documented per-message framing: `<|start|>{role}<|message|>` around each message costs 3
 * tokens besides its role and content, a `name` costs one more, and the reply is primed with 3
 * (openai-cookbook, "How to count tokens with tiktoken", num_tokens_from_messages).
 */
const tokensPerMessage = 3;
const tokensPerName = 1;
const tokensForReplyPriming = 3;

/**
 * Estimates the prompt tokens of OpenAI chat `messages`, as the cookbook's
 * num_tokens_from_messages does: the framing above, plus the tokens of the text the model reads:
 * role, name, string content or the text of `type: "text"` content parts, refusal, tool call ids,
 * and the name and arguments of each tool call (and of the legacy `function_call`).
 *
 * Images, audio and files are not counted: upstreams bill them by their own rules, and tool
 * definitions (`tools`) are outside `messages`. An estimate even for OpenAI models, which add
 * hidden framing for tools; for non-OpenAI tokenizers see the module comment. Anything that is
 * not an array of objects counts 0 rather than throwing: metering must not fail a request.
 */
export async function countMessageTokens(messages: unknown): Promise<number> {
  if (!Array.isArray(messages) || messages.length === 0) return 0;
  const texts: string[] = [];
  let framingTokens = tokensForReplyPriming;
  for (const message of messages) {
    if (!isRecord(message)) continue;
    framingTokens += tokensPerMessage;
    if (typeof message.name === "string") framingTokens += tokensPerName;
    collectMessageTexts(message, texts);
  }
  let total = framingTokens;
  for (const text of texts) total += await countTextTokens(text);
  return total;
}

function collectMessageTexts(message: Record<string, unknown>, texts: string[]): void {
  pushString(message.role, texts);
  pushString(message.name, texts);
  pushString(message.refusal, texts);
  pushString(message.tool_call_id, texts);
  const content = message.content;
  if (typeof content === "string") {
    texts.push(content);
  } else if (Array.isArray(content)) {
    for (const part of content) {
      if (isRecord(part) && part.type === "text") pushString(part.text, texts);
    }
  }
  if (Array.isArray(message.tool_calls)) {
    for (const toolCall of message.tool_calls) {
      if (isRecord(toolCall)) collectFunctionTexts(toolCall.function, texts);
    }
  }
  collectFunctionTexts(message.function_call, texts);
}

function collectFunctionTexts(call: unknown, texts: string[]): void {
  if (!isRecord(call)) return;
  pushString(call.name, texts);
  pushString(call.arguments, texts);
}

function pushString(value: unknown, texts: string[]): void {
  if (typeof value === "string" && value.length > 0) texts.push(value);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
