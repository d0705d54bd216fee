/**
 * Instructions per request in each proxy's server process, counted by valgrind's callgrind: a
 * figure that does not move with the machine's load, unlike time (the env notes: the same count
 * twice, with the other core busy or not). For telling whether a change to the gateway's hot
 * path saves work when timings on a shared 2-core machine are too noisy to say.
 *
 *   node dist/count-instructions.js streaming 32 [warmupMs=20000] [measuredMs=20000]
 *
 * Each server runs under valgrind (about 50 times slower), is warmed until V8 has optimized the
 * hot path, then has its counters zeroed, serves the measured window, and dumps them. It counts
 * instructions in the process, JIT-compiled code included, not cache misses or time in the
 * kernel, so it complements `npm run bench`; it does not replace it.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { BenchProcess } from "./bench-process.js";
import type { CellResult, ReadyMessage } from "./protocol.js";
import { chatRequestBody } from "./workload.js";

const [modeArgument = "streaming", concurrencyArgument = "32", warmupArgument = "20000", measuredArgument = "20000"] = process.argv.slice(2);
if (modeArgument !== "streaming" && modeArgument !== "non-streaming") throw new Error("mode must be 'streaming' or 'non-streaming'");
const stream = modeArgument === "streaming";
const concurrency = Number(concurrencyArgument);
const directory = fileURLToPath(new URL("../bench-results/callgrind/", import.meta.url));
rmSync(directory, { recursive: true, force: true });
mkdirSync(directory, { recursive: true });

/** The `totals:` line of a callgrind dump: instructions executed since the counters were zeroed. */
function instructionsIn(pid: number): number {
  const files = readdirSync(directory).filter((name) => name.startsWith(`callgrind.${pid}.`));
  const newest = files.sort((a, b) => Number(a.split(".").at(-1)) - Number(b.split(".").at(-1))).at(-1);
  if (newest === undefined) throw new Error(`no callgrind dump for process ${pid}`);
  const totals = /^(?:totals|summary): (\d+)/m.exec(readFileSync(`${directory}${newest}`, "utf8"));
  if (totals === null) throw new Error(`no totals in ${newest}`);
  return Number(totals[1]);
}

async function measure(client: BenchProcess, name: string, script: string, env: Record<string, string>): Promise<void> {
  const server = await BenchProcess.start({
    name,
    script,
    env,
    timeoutMs: 120_000,
    wrapper: { path: "valgrind", args: ["--tool=callgrind", `--callgrind-out-file=${directory}callgrind.%p`, "--quiet"] },
  });
  try {
    const ready = server.ready as unknown as ReadyMessage;
    const target = { origin: ready.origin, path: ready.path, headers: { "content-type": "application/json", authorization: `Bearer ${ready.apiKey ?? "sk-bench-not-checked"}` } };
    const cell = (durationMs: number) =>
      client.request<CellResult>(
        { type: "cell", target, body: chatRequestBody({ model: ready.model, stream }), stream, concurrency, warmupMs: 0, durationMs },
        durationMs + 120_000,
      );
    await cell(Number(warmupArgument));
    execFileSync("callgrind_control", ["--zero", String(server.process.pid)], { stdio: "ignore" });
    const result = await cell(Number(measuredArgument));
    execFileSync("callgrind_control", ["--dump", String(server.process.pid)], { stdio: "ignore" });
    const perRequest = instructionsIn(server.process.pid) / Math.max(1, result.requests);
    process.stdout.write(`${name.padEnd(14)} ${result.requests} requests, ${Math.round(perRequest).toLocaleString("en-US")} instructions per request${result.errors > 0 ? ` (${result.errors} errors)` : ""}\n`);
  } finally {
    await server.process.stop();
  }
}

const upstream = await BenchProcess.start({ name: "upstream", script: "upstream-server" });
const client = await BenchProcess.start({ name: "load generator", script: "load-generator" });
const env = { BENCH_UPSTREAM_URL: (upstream.ready as unknown as ReadyMessage).origin };
try {
  await measure(client.process, "minimal proxy", "minimal-proxy", env);
  await measure(client.process, "Sluice", "sluice-server", env);
} finally {
  await Promise.all([client.process.stop(), upstream.process.stop()]);
}
