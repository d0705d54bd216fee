import type { Readable } from "node:stream";
import { GatewayError } from "@sluice/core";
import { cancelledError } from "./tunnel-errors.js";

/** A whole JSON-object body, parsed, and its text as it arrived: 502 when it is not one, "cancelled" on an abort. */
export async function readJsonBody(body: Readable, signal: AbortSignal, limit: number): Promise<{ object: Record<string, unknown>; text: string }> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) throw new GatewayError("upstream_error", `The model server's answer is larger than ${limit} bytes.`);
      chunks.push(chunk);
    }
  } catch (error) {
    if (signal.aborted) throw cancelledError(error);
    if (GatewayError.is(error)) throw error;
    throw new GatewayError("upstream_error", "The connection through the session tunnel failed before the answer was complete.", {
      cause: error,
    });
  }
  const text = Buffer.concat(chunks, size).toString("utf8");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new GatewayError("upstream_error", "The model server answered with a body that is not JSON.", { cause: error });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new GatewayError("upstream_error", "The model server answered with JSON that is not an object.");
  }
  return { object: parsed as Record<string, unknown>, text };
}
