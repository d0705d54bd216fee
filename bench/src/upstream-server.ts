/**
 * Path 1, "upstream direct": core's fake OpenAI-compatible upstream in its own process. Without
 * pacing it writes a whole stream in one write, so it is the floor both other paths stand on.
 */
import { startFakeUpstream } from "@sluice/core/testing";
import { serveControl } from "./server-control.js";
import { upstreamModel } from "./workload.js";

// No recording: the benchmark sends hundreds of thousands of requests and memory must stay flat.
const upstream = await startFakeUpstream({ record: false, models: [upstreamModel] });
serveControl({ origin: upstream.url, path: "/v1/chat/completions", model: upstreamModel, apiKey: null }, () => upstream.close());
