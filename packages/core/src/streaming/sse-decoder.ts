/**
 * An incremental Server-Sent Events decoder, following the WHATWG event-stream interpretation
 * (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation),
 * with one deliberate deviation noted on `flush()`.
 *
 * It sits on every streamed token, so it works on strings with `indexOf` and `charCodeAt`, never a
 * per-byte loop or a per-line regex, and each decoded character is searched at most once for LF
 * and once for CR (about 0.3 µs per event on OpenAI's chunks, Node 24).
 */

import { isAscii } from "node:buffer";
import { TextDecoder } from "node:util";

/** ASCII bytes as text: each byte is its character, so no decoding is needed. */
function asciiText(chunk: Uint8Array): string {
  return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString("latin1");
}

/** One dispatched event. */
export interface SseEvent {
  /** The event's `data:` lines, joined with "\n". */
  data: string;
  /** The `event:` field, present when the event named a type. */
  event?: string;
  /**
   * The stream's last event id, present when one was set. As WHATWG specifies, an `id:` persists
   * onto later events until another `id:` line changes it.
   */
  id?: string;
}

const lineFeed = 0x0a;
const space = 0x20;

export class SseDecoder {
  // UTF-8, non-fatal (bad bytes become U+FFFD, as WHATWG requires), and it drops one leading BOM.
  // `stream: true` keeps a multi-byte character split across chunks until its last byte arrives.
  // Made for the first chunk that is not ASCII, and dropped at `flush`: most streams never need
  // one. Null also says that no byte has gone through a decoder, so none holds part of a character.
  #textDecoder: TextDecoder | null = null;
  /** Some text of this stream has been decoded (so a BOM from here on is content). */
  #textSeen = false;
  /** Text after the last line end: the start of a line still arriving. */
  #partialLine = "";
  /** The previous text ended with CR, so an LF opening the next text completes that CRLF. */
  #skipLineFeed = false;
  /** The data buffer; null until the event's first `data` line (an event without one is not dispatched). */
  #data: string | null = null;
  #eventType = "";
  #lastEventId = "";

  /** Decodes one chunk of the body and returns the events it completed, in order. */
  decode(chunk: Uint8Array): SseEvent[] {
    return this.consume(this.decodeText(chunk));
  }

  /**
   * The text of one chunk of the body, for a caller that looks at it before `consume` (a
   * character split across chunks waits for its last byte).
   */
  decodeText(chunk: Uint8Array): string {
    // Nearly every stream is ASCII. While the UTF-8 decoder has seen none of it (so holds no part
    // of a character, and no BOM is pending), ASCII bytes are their own text: copying them is
    // cheaper than decoding, and checking costs a SIMD pass.
    let decoder = this.#textDecoder;
    if (decoder === null) {
      if (isAscii(chunk)) {
        if (chunk.byteLength > 0) this.#textSeen = true;
        return asciiText(chunk);
      }
      // A BOM is dropped only at the very start of the stream: past it, the decoder must keep one.
      decoder = this.#textDecoder = this.#textSeen ? new TextDecoder("utf-8", { ignoreBOM: true }) : new TextDecoder();
    }
    return decoder.decode(chunk, { stream: true });
  }

  /** Consumes text from `decodeText` and returns the events it completed, in order. */
  consume(text: string): SseEvent[] {
    const events: SseEvent[] = [];
    this.#consume(text, events);
    return events;
  }

  /**
   * True between events: nothing of an event or a line is pending, so text that starts here can
   * be read without this decoder (which is how a reader may take a run of plain `data:` events in
   * one piece, and hand back only what it does not recognise).
   */
  get atEventBoundary(): boolean {
    return this.#partialLine.length === 0 && this.#data === null && this.#eventType === "" && !this.#skipLineFeed;
  }

  /** True when the text so far ended with a line end (so a line feed next is a blank line). */
  get atLineStart(): boolean {
    return this.#partialLine.length === 0;
  }

  /**
   * Ends the stream and returns what it still held. Unlike WHATWG, which discards an event that the
   * body ends before its blank line, this dispatches it: TGI 1.4 closes the stream right after its
   * last `data:` line, without the blank line and without `[DONE]`. After `flush` the decoder is
   * ready for a new stream.
   */
  flush(): SseEvent[] {
    const events: SseEvent[] = [];
    if (this.#textDecoder !== null) {
      this.#consume(this.#textDecoder.decode(), events);
      this.#textDecoder = null;
    }
    this.#textSeen = false;
    if (this.#partialLine.length > 0) {
      const line = this.#partialLine;
      this.#partialLine = "";
      this.#processLine(line, events);
    }
    this.#dispatch(events);
    this.#skipLineFeed = false;
    this.#lastEventId = "";
    return events;
  }

  #consume(text: string, events: SseEvent[]): void {
    // A chunk holding only the first bytes of a character decodes to "", and says nothing about a
    // pending CRLF: keep waiting for the character after the CR.
    if (text.length === 0) return;
    let position = 0;
    if (this.#skipLineFeed) {
      this.#skipLineFeed = false;
      if (text.charCodeAt(0) === lineFeed) position = 1;
    }
    // Each search result is kept until the scan passes it, so a text without any CR (the usual
    // case) is searched for CR once, not once per line.
    let nextLineFeed = text.indexOf("\n", position);
    let nextCarriageReturn = text.indexOf("\r", position);
    while (nextLineFeed !== -1 || nextCarriageReturn !== -1) {
      let lineEnd: number;
      let nextLineStart: number;
      if (nextCarriageReturn === -1 || (nextLineFeed !== -1 && nextLineFeed < nextCarriageReturn)) {
        lineEnd = nextLineFeed;
        nextLineStart = lineEnd + 1;
      } else {
        lineEnd = nextCarriageReturn;
        if (lineEnd + 1 < text.length) {
          nextLineStart = text.charCodeAt(lineEnd + 1) === lineFeed ? lineEnd + 2 : lineEnd + 1;
        } else {
          // CR ends this text: the line is complete either way, but an LF may open the next chunk.
          nextLineStart = lineEnd + 1;
          this.#skipLineFeed = true;
        }
      }
      let line = text.slice(position, lineEnd);
      if (this.#partialLine.length > 0) {
        line = this.#partialLine + line;
        this.#partialLine = "";
      }
      this.#processLine(line, events);
      position = nextLineStart;
      if (nextLineFeed !== -1 && nextLineFeed < position) nextLineFeed = text.indexOf("\n", position);
      if (nextCarriageReturn !== -1 && nextCarriageReturn < position) {
        nextCarriageReturn = text.indexOf("\r", position);
      }
    }
    if (position < text.length) this.#partialLine += text.slice(position);
  }

  #processLine(line: string, events: SseEvent[]): void {
    if (line.length === 0) {
      this.#dispatch(events);
      return;
    }
    const colonIndex = line.indexOf(":");
    // A leading colon marks a comment: keep-alives (TGI sends them) and our fixtures' headers.
    if (colonIndex === 0) return;
    if (colonIndex === -1) {
      // A line without a colon is a field name with an empty value.
      this.#applyField(line, "");
      return;
    }
    // At most one space after the colon is syntax; TGI 1.4 writes `data:{...}` with none.
    const valueStart = line.charCodeAt(colonIndex + 1) === space ? colonIndex + 2 : colonIndex + 1;
    // Fast path: nearly every line of a completion stream is a `data:` line.
    if (colonIndex === 4 && line.startsWith("data")) {
      this.#appendData(line.slice(valueStart));
      return;
    }
    this.#applyField(line.slice(0, colonIndex), line.slice(valueStart));
  }

  #applyField(field: string, value: string): void {
    switch (field) {
      case "data":
        this.#appendData(value);
        return;
      case "event":
        this.#eventType = value;
        return;
      case "id":
        if (!value.includes("\0")) this.#lastEventId = value;
        return;
      case "error":
        // Not a WHATWG field: llama.cpp's server (2024 to late 2025 builds) reports a failure
        // after its 200 as `error: {...}` and then still sends `[DONE]`. Ignored as WHATWG asks,
        // the failure would vanish and a cut answer pass for a finished one; it is an `error`
        // event instead.
        this.#eventType = "error";
        this.#appendData(value);
        return;
      default:
        // `retry` tunes a browser's reconnection, which a gateway never does; other fields are
        // ignored, as WHATWG requires.
        return;
    }
  }

  #appendData(value: string): void {
    this.#data = this.#data === null ? value : `${this.#data}\n${value}`;
  }

  #dispatch(events: SseEvent[]): void {
    const data = this.#data;
    const eventType = this.#eventType;
    this.#data = null;
    this.#eventType = "";
    if (data === null) return;
    const event: SseEvent = { data };
    if (eventType !== "") event.event = eventType;
    if (this.#lastEventId !== "") event.id = this.#lastEventId;
    events.push(event);
  }
}
