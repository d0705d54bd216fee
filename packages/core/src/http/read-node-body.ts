import type { IncomingMessage } from "node:http";
import { GatewayError } from "../errors/gateway-error.js";
import type { GatewayHeaders } from "../gateway/gateway-options.js";

/**
 * Reads a node:http request body up to `limit` bytes, for every node:http edge (the OpenAI API
 * and the management API). Past the limit it stops reading and resolves a 413 GatewayError
 * rather than buffering what it will refuse; the caller answers with `connection: close`.
 */
export function readNodeBody(request: IncomingMessage & { body?: unknown }, limit: number): Promise<Uint8Array | GatewayError> {
  const tooLarge = () =>
    new GatewayError("request_too_large", `The request body is larger than the gateway accepts (${limit} bytes).`);
  // A host's body parser (express.json()) may have consumed the stream already.
  if (request.body !== undefined && request.readableEnded) {
    const text = typeof request.body === "string" ? request.body : JSON.stringify(request.body);
    const bytes = Buffer.from(text, "utf8");
    return Promise.resolve(bytes.byteLength > limit ? tooLarge() : bytes);
  }
  const declared = Number(request.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) return Promise.resolve(tooLarge());

  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > limit) {
        cleanup();
        request.resume();
        resolve(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(new GatewayError("invalid_request", "The request body could not be read.", { cause: error }));
    };
    const cleanup = () => {
      request.off("data", onData);
      request.off("end", onEnd);
      request.off("error", onError);
    };
    request.on("data", onData);
    request.on("end", onEnd);
    request.on("error", onError);
  });
}

/** A node:http request's headers as the gateway reads them: by lower-case name, the first when repeated. */
export function nodeHeaders(request: IncomingMessage): GatewayHeaders {
  return {
    get(name) {
      const value = request.headers[name];
      return Array.isArray(value) ? value[0] : value;
    },
  };
}

/** `/api/ai/` → `/api/ai`; `api/ai` → `/api/ai`; `/` stays. */
export function normalizeBasePath(path: string): string {
  const withSlash = path.startsWith("/") ? path : `/${path}`;
  return withSlash.length > 1 && withSlash.endsWith("/") ? withSlash.slice(0, -1) : withSlash;
}
