import type { OpenAIRequestBody } from "@sluice/core";

/**
 * Request fields that dated Azure api-versions refuse. Azure answers an unknown field with a 400
 * (`"Unknown parameter: 'stream_options'."`, wire-formats §3.3), so a body the client wrote for
 * OpenAI must lose what the chosen version does not know. Everything else passes through.
 *
 * `preview` is the first dated preview that accepts the field and `ga` the first dated GA, or
 * null when no dated GA does. The `/openai/v1/` API takes them all and is never filtered.
 */
interface FieldSupport {
  field: string;
  preview: string;
  ga: string | null;
  /** Instead of dropping the field, send its value under this older name (when that is unset). */
  renameTo?: string;
}

const fieldSupport: readonly FieldSupport[] = [
  // Added in 2024-09-01-preview, kept in 2024-10-21 (the 2024-10-21 inference spec has it).
  { field: "stream_options", preview: "2024-09-01-preview", ga: "2024-10-21" },
  // Same versions. Dropping the cap would let a request run past what its budget reserved, so an
  // older version gets it as `max_tokens`, which those versions know.
  { field: "max_completion_tokens", preview: "2024-09-01-preview", ga: "2024-10-21", renameTo: "max_tokens" },
  // 2024-10-21 refuses it (griptape-ai/griptape#1640); previews from 2024-08-01 accept it.
  { field: "parallel_tool_calls", preview: "2024-08-01-preview", ga: null },
];

/** `2024-10-21` -> { date: "2024-10-21", preview: false }; null for a version that is not dated. */
function parseDatedVersion(version: string): { date: string; preview: boolean } | null {
  const match = /^(\d{4}-\d{2}-\d{2})(-preview)?$/.exec(version);
  if (match === null) return null;
  return { date: match[1]!, preview: match[2] !== undefined };
}

function accepts(version: { date: string; preview: boolean }, support: FieldSupport): boolean {
  const since = version.preview ? support.preview : support.ga;
  if (since === null) return false;
  // Dated versions order as strings; a preview of a date precedes the GA of the same date.
  return version.date >= since.slice(0, 10);
}

/** The fields the dated api-version refuses, for the settings page and tests. */
export function fieldsRefusedBy(apiVersion: string): string[] {
  const version = parseDatedVersion(apiVersion);
  if (version === null) return [];
  return fieldSupport.filter((support) => !accepts(version, support)).map((support) => support.field);
}

/**
 * The body to send with a dated api-version: refused fields removed (or renamed), everything else
 * unchanged. Returns the same object when nothing had to change. Versions that are not dated
 * (`v1`, `preview`, something newer this table does not know the shape of) are left alone.
 */
export function fitBodyToApiVersion(body: OpenAIRequestBody, apiVersion: string | undefined): OpenAIRequestBody {
  if (apiVersion === undefined) return body;
  const version = parseDatedVersion(apiVersion);
  if (version === null) return body;
  let out: OpenAIRequestBody | null = null;
  for (const support of fieldSupport) {
    if (body[support.field] === undefined || accepts(version, support)) continue;
    out ??= { ...body };
    const value = out[support.field];
    delete out[support.field];
    if (support.renameTo !== undefined && out[support.renameTo] === undefined && value !== null) out[support.renameTo] = value;
  }
  return out ?? body;
}
