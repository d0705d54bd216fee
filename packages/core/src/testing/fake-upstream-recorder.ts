/**
 * What the fake upstream remembers about each request, and the waits tests build on it: "the
 * gateway forwarded this body", "the client's disconnect reached the upstream within 100 ms".
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import type { FakeControl } from "./fake-upstream-requests.js";

/** How a recorded request ended. */
export type FakeRequestOutcome = "pending" | "completed" | "client-aborted" | "server-destroyed";

export interface RecordedRequest {
  /** Position in `requests`, counted from the last reset(). */
  readonly index: number;
  readonly method: string;
  /** The path without the query string. */
  readonly path: string;
  /** The request target as sent, query included. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  /** The parsed JSON body; undefined for an empty or unparseable body (see rawBody). */
  readonly body: unknown;
  readonly rawBody: string;
  /** The merged `fake` control (header over body), or null when the request sent none. */
  readonly control: FakeControl | null;
  /** Whether the body asked for a stream (`stream: true`). */
  readonly stream: boolean;
  /** Date.now() when the request arrived. */
  readonly receivedAt: number;
  /** The status sent, once headers went out. */
  readonly status: number | null;
  /**
   * "completed" once the response finished; "client-aborted" when the client closed the connection
   * first; "server-destroyed" when the fake killed it on purpose (`failAfterChunks`, close()).
   */
  readonly outcome: FakeRequestOutcome;
  /** Date.now() when the response finished. */
  readonly finishedAt: number | null;
  /** Date.now() when the client closed the connection before the response finished. */
  readonly abortedAt: number | null;
  /**
   * Bytes of a streamed response handed to the socket so far (0 for other responses). Writes
   * wait for 'drain', so this stays bounded while the reader does not read: backpressure tests
   * watch it.
   */
  readonly bytesWritten: number;
  /** Countable chunks of a streamed response written so far (content words, tool deltas, replay pieces). */
  readonly chunksWritten: number;
}

export type MutableRecord = { -readonly [Key in keyof RecordedRequest]: RecordedRequest[Key] };

export interface RecordStart {
  request: IncomingMessage;
  response: ServerResponse;
  method: string;
  path: string;
  url: string;
  rawBody: string;
  receivedAt: number;
}

export interface RequestRecorder {
  /** Live list: cleared in place by reset(), so a reference held by a test stays current. */
  readonly requests: MutableRecord[];
  /** Records a request and watches its response for completion or abort. */
  start(input: RecordStart): MutableRecord;
  /** From now on, closed sockets are the fake's doing, not the clients'. */
  stopRecordingAborts(): void;
  waitForAbort(requestIndex: number, timeoutMs: number): Promise<number>;
  waitForRequest(requestIndex: number, timeoutMs: number): Promise<RecordedRequest>;
  reset(): void;
}

type Settlement<Result> = { value: Result } | { error: Error } | null;

export function createRequestRecorder(): RequestRecorder {
  const requests: MutableRecord[] = [];
  // Waiters re-check on every arrival and every settlement; empty (and free) when nobody waits.
  const changeListeners = new Set<() => void>();
  let closing = false;

  const notify = (): void => {
    if (changeListeners.size === 0) return;
    for (const listener of [...changeListeners]) listener();
  };

  function waitFor<Result>(
    requestIndex: number,
    timeoutMs: number,
    settle: (record: MutableRecord) => Settlement<Result>,
    timeoutMessage: string,
  ): Promise<Result> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const record = requests[requestIndex];
        if (record === undefined) return false;
        const result = settle(record);
        if (result === null) return false;
        if ("error" in result) reject(result.error);
        else resolve(result.value);
        return true;
      };
      if (check()) return;
      const listener = (): void => {
        if (!check()) return;
        clearTimeout(timer);
        changeListeners.delete(listener);
      };
      const timer = setTimeout(() => {
        changeListeners.delete(listener);
        reject(new Error(timeoutMessage));
      }, timeoutMs);
      changeListeners.add(listener);
    });
  }

  return {
    requests,
    start(input) {
      const record: MutableRecord = {
        index: requests.length,
        method: input.method,
        path: input.path,
        url: input.url,
        headers: input.request.headers,
        body: undefined,
        rawBody: input.rawBody,
        control: null,
        stream: false,
        receivedAt: input.receivedAt,
        status: null,
        outcome: "pending",
        finishedAt: null,
        abortedAt: null,
        bytesWritten: 0,
        chunksWritten: 0,
      };
      requests.push(record);
      const { response } = input;
      // 'close' fires both after a finished response and when the socket dies first; only the
      // second, unless the fake itself pulled the plug, is a client abort.
      response.once("close", () => {
        if (record.outcome === "pending") {
          if (response.writableFinished) {
            record.outcome = "completed";
            record.finishedAt = Date.now();
          } else if (closing) {
            record.outcome = "server-destroyed";
          } else {
            record.outcome = "client-aborted";
            record.abortedAt = Date.now();
          }
        }
        notify();
      });
      notify();
      return record;
    },
    stopRecordingAborts() {
      closing = true;
    },
    waitForAbort(requestIndex, timeoutMs) {
      return waitFor<number>(
        requestIndex,
        timeoutMs,
        (record) => {
          if (record.abortedAt !== null) return { value: record.abortedAt };
          if (record.outcome !== "pending") {
            return { error: new Error(`request ${requestIndex} ended without a client abort (${record.outcome})`) };
          }
          return null;
        },
        `request ${requestIndex} was not aborted within ${timeoutMs} ms`,
      );
    },
    waitForRequest(requestIndex, timeoutMs) {
      return waitFor<RecordedRequest>(
        requestIndex,
        timeoutMs,
        (record) => ({ value: record }),
        `request ${requestIndex} did not arrive within ${timeoutMs} ms`,
      );
    },
    reset() {
      requests.length = 0;
    },
  };
}
