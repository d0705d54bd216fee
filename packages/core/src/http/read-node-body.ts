import type { IncomingMessage } from "node:http";
import { GatewayError } from "../errors/gateway-error.js";
import type { GatewayHeaders } from "../gateway/gateway-options.js";

/**
 * Reads a node:http request body up to `limit` bytes, for every node:http edge (the OpenAI API
 * and the management API). Past the limit it stops reading and resolves a 413 GatewayError
 * rather than buffering what it will refuse; the caller answers with `connection: close`.
 * Rejects when the body cannot be read: a stream error, or a client that went away, which may
 * happen before the read starts (the caller is authenticated first, and that may wait on I/O).
 */
export function readNodeBody(request: IncomingMessage & { body?: unknown }, limit: number): Promise<Uint8Array | GatewayError> {
  const tooLarge = () =>
    new GatewayError("request_too_large", `The request body is larger than the gateway accepts (${limit} bytes).`);
  // A host's body parser may have consumed the stream already: express.json() leaves an object,
  // express.text() a string, express.raw() the bytes themselves.
  if (request.readableEnded) {
    const body = request.body;
    if (body === undefined) {
      // Waiting for the stream's events would wait for ever: they have all fired.
      return Promise.resolve(
        new GatewayError(
          "internal_error",
          "The request body was read before the gateway got it, and not handed on (a body parser mounted before the gateway?). Mount the gateway before body parsers, or set `request.body`.",
        ),
      );
    }
    const bytes = body instanceof Uint8Array ? body : Buffer.from(typeof body === "string" ? body : JSON.stringify(body), "utf8");
    return Promise.resolve(bytes.byteLength > limit ? tooLarge() : bytes);
  }
  const declared = Number(request.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) return Promise.resolve(tooLarge());
  // Gone before the read began: its stream will fire nothing more.
  if (request.destroyed) return Promise.reject(clientGone());
  // A body that has arrived whole is taken at once, without four listeners and the ticks of
  // 'data' and 'end'. A body with a Content-Length has arrived whole once that many bytes are
  // buffered: Node 24 pushes a packet's body before the handler's first await resumes, but marks
  // the message complete, and ends the stream, only on a later turn of the event loop. Waiting
  // for that turn cost the gateway 10 to 20 µs of CPU per request at one connection (`npm run
  // bench`, focus-cell). A chunked body is whole only once Node says so: after authentication
  // that waited on I/O (a database key store), Node has parsed the rest of the packet meanwhile.
  if (request.readableFlowing !== true && (request.complete || request.readableLength === declared)) {
    const bytes = (request.read() as Buffer | null) ?? Buffer.alloc(0);
    return Promise.resolve(bytes.byteLength > limit ? tooLarge() : bytes);
  }

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
    // A client that goes away mid-body destroys the stream without an 'error' or an 'end'.
    const onClose = () => {
      cleanup();
      reject(clientGone());
    };
    const cleanup = () => {
      request.off("data", onData);
      request.off("end", onEnd);
      request.off("error", onError);
      request.off("close", onClose);
    };
    request.on("data", onData);
    request.on("end", onEnd);
    request.on("error", onError);
    request.on("close", onClose);
  });
}

function clientGone(): GatewayError {
  return new GatewayError("invalid_request", "The request body could not be read: the client went away.");
}

/** `readNodeBody` for a caller that takes a refusal as a throw (the gateway's and the management API's `readBody`). */
export async function readNodeBodyOrThrow(request: IncomingMessage, limit: number): Promise<Uint8Array> {
  const read = await readNodeBody(request, limit);
  if (read instanceof GatewayError) throw read;
  return read;
}

/**
 * Whether an edge that answered without reading the body should close the connection: Node reads
 * and discards an unread body once the answer is out and keeps the connection for the next
 * request (closing at once would reset a client still sending, and lose the answer with it), but
 * a body declared larger than the edge would ever read is not worth reading to its end.
 */
export function unreadBodyClosesConnection(request: IncomingMessage, limit: number): boolean {
  const declared = Number(request.headers["content-length"]);
  return Number.isFinite(declared) && declared > limit;
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
