/**
 * What the fake upstream says, and how it counts: deterministic, so every test can compute the
 * expected reply text and token numbers from the request alone.
 *
 * Token accounting (the rules tests check against):
 * - Completion tokens = the number of content chunks streamed, one word per chunk. The reply text
 *   of a response with `n` completion tokens is `fakeReplyText(n)`: word 0 has no leading space,
 *   every later word carries its own leading space (as real tokenizers emit ` word`).
 * - Prompt tokens = `fakePromptTokens(body)`: ceil(C / 4) + T, minimum 1, where C is the total
 *   character count (UTF-16 code units) of every string the request sends as text, and T the
 *   number of token ids it sends as integer arrays. Text is: each chat message's string `content`
 *   and the `text` of its content parts; a completion's `prompt` (string or string[]); an
 *   embedding's `input` (string or string[]). Token ids are an embedding's or a completion's
 *   `number[]` / `number[][]` input. Roles, names, tools and every other field count nothing.
 * - Tool-call streams count one completion token per tool-call delta chunk.
 */

const replyWords = [
  "Sluice",
  "streams",
  "every",
  "token",
  "from",
  "the",
  "fake",
  "upstream",
  "in",
  "order",
  "so",
  "tests",
  "can",
  "count",
  "them",
  "exactly",
] as const;

/** The text of content chunk `index` (0-based): its word, with a leading space after the first. */
export function fakeReplyWord(index: number): string {
  const word = replyWords[index % replyWords.length] ?? "";
  return index === 0 ? word : ` ${word}`;
}

/** The whole reply a response with `completionTokens` content chunks carries. */
export function fakeReplyText(completionTokens: number): string {
  let text = "";
  for (let index = 0; index < completionTokens; index++) text += fakeReplyWord(index);
  return text;
}

interface TextCount {
  characters: number;
  tokenIds: number;
}

function countInput(value: unknown, count: TextCount): void {
  if (typeof value === "string") {
    count.characters += value.length;
  } else if (Array.isArray(value)) {
    for (const item of value) {
      if (typeof item === "number") count.tokenIds += 1;
      else countInput(item, count);
    }
  }
}

function countMessages(messages: unknown, count: TextCount): void {
  if (!Array.isArray(messages)) return;
  for (const message of messages) {
    if (typeof message !== "object" || message === null) continue;
    const content = (message as { content?: unknown }).content;
    if (typeof content === "string") {
      count.characters += content.length;
    } else if (Array.isArray(content)) {
      for (const part of content) {
        const text = typeof part === "object" && part !== null ? (part as { text?: unknown }).text : undefined;
        if (typeof text === "string") count.characters += text.length;
      }
    }
  }
}

/**
 * Prompt tokens the fake upstream reports for a request body (chat, completion or embedding):
 * ceil(characters / 4) + token ids, minimum 1. See the module comment for what counts.
 */
export function fakePromptTokens(body: unknown): number {
  if (typeof body !== "object" || body === null) return 1;
  const fields = body as { messages?: unknown; prompt?: unknown; input?: unknown };
  const count: TextCount = { characters: 0, tokenIds: 0 };
  countMessages(fields.messages, count);
  countInput(fields.prompt, count);
  countInput(fields.input, count);
  return Math.max(1, Math.ceil(count.characters / 4) + count.tokenIds);
}

/** FNV-1a over the input's text (token ids joined by commas), as the embedding's seed. */
function hashInput(input: string | readonly number[]): number {
  const text = typeof input === "string" ? `s:${input}` : `t:${input.join(",")}`;
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * The deterministic embedding of one input: a unit-length vector seeded by the input's hash
 * (mulberry32), every component rounded to float32 so the `float` and `base64` encodings of the
 * same vector decode to identical numbers.
 */
export function fakeEmbedding(input: string | readonly number[], dimensions: number): number[] {
  let state = hashInput(input);
  const vector = new Array<number>(dimensions);
  let squares = 0;
  for (let index = 0; index < dimensions; index++) {
    state = (state + 0x6d2b79f5) | 0;
    let mixed = Math.imul(state ^ (state >>> 15), 1 | state);
    mixed = (mixed + Math.imul(mixed ^ (mixed >>> 7), 61 | mixed)) ^ mixed;
    const unit = ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
    const component = unit * 2 - 1;
    vector[index] = component;
    squares += component * component;
  }
  const norm = Math.sqrt(squares) || 1;
  for (let index = 0; index < dimensions; index++) vector[index] = Math.fround((vector[index] ?? 0) / norm);
  return vector;
}

/** An embedding as OpenAI's `base64` encoding: little-endian float32 bytes. */
export function encodeEmbeddingBase64(vector: readonly number[]): string {
  const floats = Float32Array.from(vector);
  return Buffer.from(floats.buffer, floats.byteOffset, floats.byteLength).toString("base64");
}

/** One tool call the fake upstream makes, with its arguments split the way the OpenAI capture splits them. */
export interface FakeToolCall {
  name: string;
  /** Argument fragments in streaming order; joined, they are the call's JSON arguments. */
  fragments: readonly string[];
}

/**
 * The two parallel calls of `fake.toolCalls`, fragmented exactly like
 * __fixtures__/sse/openai-chat-tool-calls-parallel.txt (fragments split inside JSON tokens).
 */
export const fakeToolCalls: readonly FakeToolCall[] = [
  {
    name: "get_weather",
    fragments: ['{"ci', 'ty": ', '"Edinb', "urgh", '", "c', "ountry", '": "', 'GB", ', '"units', '": "', 'c"}'],
  },
  {
    name: "get_stock_price",
    fragments: ['{"ti', 'cker"', ': "AAP', 'L", ', '"exch', 'ange":', ' "NA', 'SDAQ"', "}"],
  },
];
