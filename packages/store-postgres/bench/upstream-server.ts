/**
 * The fake OpenAI-compatible upstream in a process of its own, so its CPU is not the gateway's
 * nor the load generator's. Not recording: memory stays flat. Reports { type: "listening", url }.
 */
import { startFakeUpstream } from "@sluice/core/testing";

const upstream = await startFakeUpstream({ record: false, models: ["bench-model"] });
process.send?.({ type: "listening", url: upstream.url });
process.on("message", (message: { type: string }) => {
  if (message.type === "stop") void upstream.close().then(() => process.exit(0));
});
process.once("disconnect", () => process.exit(1));
