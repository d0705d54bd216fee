import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { startFakeUpstream } from "@sluice/core/testing";
import { createTunnelHub, createMemoryTunnelTokenStore, reverseTunnelId } from "@sluice/adapter-tunnel";
const up = await startFakeUpstream({ record: false });
const hub = createTunnelHub({ tokens: createMemoryTunnelTokenStore() });
const server = createServer(); hub.attach(server);
await new Promise(r => server.listen(0, "127.0.0.1", r));
const { secret } = await hub.createToken({ userId: "u", name: "s" });
const child = spawn(process.execPath, ["dist/bin/sluice-tunnel.js", "--gateway", `http://127.0.0.1:${server.address().port}/sluice/tunnel`, "--token", secret, "--target", up.url, "--quiet"], { stdio: "inherit" });
const id = reverseTunnelId("u", "s");
while (hub.get(id)?.status !== "running") await new Promise(r => setTimeout(r, 20));
for (let round = 0; round < 3; round++) {
  const t0 = performance.now(); const cpu0 = process.cpuUsage();
  const res = await hub.request(id, { method: "POST", path: "/v1/chat/completions", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "m", stream: true, messages: [], fake: { chunks: 100000 } }), signal: AbortSignal.timeout(30000) });
  let n = 0, bytes = 0; for await (const c of res.body) { n++; bytes += c.length; }
  const cpu = process.cpuUsage(cpu0);
  console.log(`chunks ${n} bytes ${bytes} avg ${(bytes/n|0)} ms ${(performance.now()-t0).toFixed(0)} hubCPU ${((cpu.user+cpu.system)/1000).toFixed(0)}ms`);
}
child.kill(); process.exit(0);
