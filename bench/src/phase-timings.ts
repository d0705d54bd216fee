/**
 * Where a request's time goes inside a server, at one connection: from the moment Node has
 * parsed its headers to the moment the server sends the upstream request's headers (`before`),
 * from then to the upstream's response headers (`upstream`), from then to the answer's 'finish'
 * (`relay`), and from then to the next request's headers (`outside`). Node emits 'finish' once
 * the last bytes are with the kernel and the turn that wrote them is over, so `relay` also holds
 * what a server runs in that turn after its last write (Sluice's settling), which the client
 * does not wait for; `outside` is then shorter by as much. Read from Node's and undici's
 * diagnostics channels, so every server (the proxies, the skeleton, Sluice) is measured the same
 * way and none is changed to be measured.
 *
 * The channels name no request in common (the client's request and the upstream one are
 * different objects), so the phases pair up only when one request is in flight at a time:
 * `focus-cell` asks for them at one connection. Each phase is a median over the window, in µs.
 */
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import type { PhaseTimingsSample } from "./protocol.js";

const now = () => Number(process.hrtime.bigint()) / 1_000;

let requestStart = 0;
let upstreamSent = 0;
let upstreamAnswered = 0;
let lastFinished = 0;
const before: number[] = [];
const outside: number[] = [];
const upstream: number[] = [];
const relay: number[] = [];

const onRequestStart = () => {
  requestStart = now();
  if (lastFinished > 0) outside.push(requestStart - lastFinished);
  lastFinished = 0;
  upstreamSent = 0;
  upstreamAnswered = 0;
};
const onSendHeaders = () => {
  upstreamSent ||= now();
};
const onUpstreamHeaders = () => {
  upstreamAnswered ||= now();
};
const onResponseFinish = () => {
  const finished = now();
  // A request that never reached the upstream (an error answered at once) has no phases.
  if (requestStart > 0 && upstreamSent >= requestStart && upstreamAnswered >= upstreamSent && finished >= upstreamAnswered) {
    before.push(upstreamSent - requestStart);
    upstream.push(upstreamAnswered - upstreamSent);
    relay.push(finished - upstreamAnswered);
    lastFinished = finished;
  }
  requestStart = 0;
};

const channels: Array<[string, () => void]> = [
  ["http.server.request.start", onRequestStart],
  ["undici:client:sendHeaders", onSendHeaders],
  ["undici:request:headers", onUpstreamHeaders],
  ["http.server.response.finish", onResponseFinish],
];

function medianOf(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Starts timing requests, or stops and returns the medians since the start. */
export function phaseTimings(action: "start" | "stop"): PhaseTimingsSample {
  if (action === "start") {
    before.length = upstream.length = relay.length = outside.length = 0;
    requestStart = lastFinished = 0;
    for (const [name, listener] of channels) subscribe(name, listener);
    return { requests: 0, beforeUpstreamMicros: Number.NaN, upstreamMicros: Number.NaN, relayMicros: Number.NaN, outsideMicros: Number.NaN };
  }
  for (const [name, listener] of channels) unsubscribe(name, listener);
  return { requests: before.length, beforeUpstreamMicros: medianOf(before), upstreamMicros: medianOf(upstream), relayMicros: medianOf(relay), outsideMicros: medianOf(outside) };
}
