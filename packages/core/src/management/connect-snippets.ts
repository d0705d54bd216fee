/** The environment variable the snippets read the key from: they never hold a secret. */
export const API_KEY_VARIABLE = "SLUICE_API_KEY";

export interface ConnectSnippets {
  /** The official `openai` Python SDK. */
  python: string;
  /** The official `openai` Node SDK (ESM). */
  node: string;
  /** A streaming chat completion with curl. */
  curl: string;
}

/**
 * Ready-to-run examples for the OpenAI SDKs and curl, pointed at the gateway. The key comes from
 * the `SLUICE_API_KEY` environment variable: create one, export it, run the snippet.
 */
export function renderConnectSnippets(input: { baseUrl: string; model: string }): ConnectSnippets {
  // JSON string literals are valid Python and JavaScript string literals alike.
  const baseUrl = JSON.stringify(input.baseUrl);
  const model = JSON.stringify(input.model);
  const python = [
    "import os",
    "from openai import OpenAI",
    "",
    `client = OpenAI(base_url=${baseUrl}, api_key=os.environ["${API_KEY_VARIABLE}"])`,
    "response = client.chat.completions.create(",
    `    model=${model},`,
    '    messages=[{"role": "user", "content": "Hello!"}],',
    ")",
    "print(response.choices[0].message.content)",
  ].join("\n");
  const node = [
    'import OpenAI from "openai";',
    "",
    `const client = new OpenAI({ baseURL: ${baseUrl}, apiKey: process.env.${API_KEY_VARIABLE} });`,
    "const response = await client.chat.completions.create({",
    `  model: ${model},`,
    '  messages: [{ role: "user", content: "Hello!" }],',
    "});",
    "console.log(response.choices[0].message.content);",
  ].join("\n");
  const body = JSON.stringify({ model: input.model, stream: true, messages: [{ role: "user", content: "Hello!" }] });
  const curl = [
    `curl -N ${shellQuote(`${input.baseUrl}/chat/completions`)} \\`,
    `  -H "Authorization: Bearer $${API_KEY_VARIABLE}" \\`,
    "  -H 'Content-Type: application/json' \\",
    `  -d ${shellQuote(body)}`,
  ].join("\n");
  return { python, node, curl };
}

/** POSIX single quotes: nothing inside is special but the quote itself. */
function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}
