#!/usr/bin/env node
/**
 * `sluice-tunnel`: the agent a user runs inside a compute session to make the model server there
 * usable through a Sluice gateway, privately. See the package README.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { startTunnelAgent } from "../agent/tunnel-agent.js";
import type { TunnelAgentEvent, TunnelAgentStopReason } from "../agent/tunnel-agent.js";

const usage = `Usage: sluice-tunnel --gateway <url> --target <url> [options]

Connects the OpenAI-compatible server in this session (vLLM, Ollama, TGI, ...) to a Sluice
gateway through an outbound connection, so its owner can use it through the gateway.

  --gateway <url>              The gateway's tunnel URL, e.g. https://gateway.example/sluice/tunnel
                               (or SLUICE_TUNNEL_GATEWAY)
  --token <token>              Your tunnel token (or SLUICE_TUNNEL_TOKEN, which keeps it out of
                               the process list)
  --token-env <NAME>           Read the token from this environment variable instead
  --target <url>               The model server, e.g. http://127.0.0.1:8000
  --target-api-key-env <NAME>  The model server's API key, read from this environment variable;
                               it is sent to the model server only, never to the gateway
  --name <name>                The session's name, which names the provider (default: the token's)
  --ca <file>                  Extra CA certificates (PEM) to trust for the gateway
  --max-requests <n>           Requests carried at once (default 1000)
  --heartbeat-interval <ms>    How often to check the connection (default 2000)
  --heartbeat-timeout <ms>     A check unanswered this long drops the connection (default 3000)
  --reconnect-initial <ms>     First wait before reconnecting; doubles per attempt (default 500)
  --reconnect-max <ms>         Longest wait before reconnecting (default 30000)
  --quiet                      Print only errors
  --help                       Show this help

Exit status: 0 when stopped by a signal, 2 for bad usage, 3 when the gateway refused the token,
4 when another agent took the session over or the token was revoked.`;

const exitCodes: Record<TunnelAgentStopReason, number> = { closed: 0, unauthorized: 3, rejected: 3, replaced: 4, revoked: 4 };

function fail(message: string): never {
  console.error(`sluice-tunnel: ${message}\n\nRun sluice-tunnel --help for usage.`);
  process.exit(2);
}

function milliseconds(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!Number.isInteger(number) || number <= 0) fail(`${flag} must be a positive whole number of milliseconds.`);
  return number;
}

function main(): void {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        gateway: { type: "string" },
        token: { type: "string" },
        "token-env": { type: "string" },
        target: { type: "string" },
        "target-api-key-env": { type: "string" },
        name: { type: "string" },
        ca: { type: "string" },
        "max-requests": { type: "string" },
        "heartbeat-interval": { type: "string" },
        "heartbeat-timeout": { type: "string" },
        "reconnect-initial": { type: "string" },
        "reconnect-max": { type: "string" },
        quiet: { type: "boolean" },
        help: { type: "boolean" },
      },
      strict: true,
    }));
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error));
  }
  if (values.help === true) {
    console.log(usage);
    return;
  }

  const gateway = values.gateway ?? process.env.SLUICE_TUNNEL_GATEWAY;
  if (gateway === undefined || gateway === "") fail("--gateway is required.");
  const tokenEnv = values["token-env"];
  const token = values.token ?? (tokenEnv === undefined ? process.env.SLUICE_TUNNEL_TOKEN : process.env[tokenEnv]);
  if (token === undefined || token === "") fail(tokenEnv === undefined ? "--token (or SLUICE_TUNNEL_TOKEN) is required." : `${tokenEnv} is not set.`);
  const target = values.target;
  if (target === undefined) fail("--target is required.");
  const keyEnv = values["target-api-key-env"];
  const targetApiKey = keyEnv === undefined ? undefined : process.env[keyEnv];
  if (keyEnv !== undefined && (targetApiKey === undefined || targetApiKey === "")) fail(`${keyEnv} is not set.`);
  let ca: Buffer | undefined;
  if (values.ca !== undefined) {
    try {
      ca = readFileSync(values.ca);
    } catch (error) {
      fail(`cannot read --ca: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  const maxRequests = values["max-requests"] === undefined ? undefined : Number(values["max-requests"]);
  if (maxRequests !== undefined && (!Number.isInteger(maxRequests) || maxRequests <= 0)) fail("--max-requests must be a positive whole number.");

  const quiet = values.quiet === true;
  const log = (event: TunnelAgentEvent): void => {
    const at = new Date().toISOString();
    switch (event.type) {
      case "connecting":
        if (!quiet) console.error(`${at} connecting to ${gateway} (attempt ${event.attempt})`);
        break;
      case "connected":
        if (!quiet) console.error(`${at} connected: the tunnel is running`);
        break;
      case "disconnected":
        console.error(`${at} disconnected (${event.reason}); reconnecting in ${event.retryInMs} ms`);
        break;
      case "stopped":
        if (!quiet || event.reason !== "closed") console.error(`${at} stopped: ${event.message}`);
        break;
    }
  };

  let agent;
  try {
    agent = startTunnelAgent({
      gateway,
      token,
      target,
      ...(targetApiKey === undefined ? {} : { targetApiKey }),
      ...(values.name === undefined ? {} : { name: values.name }),
      ...(ca === undefined ? {} : { ca }),
      ...(maxRequests === undefined ? {} : { maxConcurrentRequests: maxRequests }),
      heartbeatIntervalMs: milliseconds(values["heartbeat-interval"], "--heartbeat-interval"),
      heartbeatTimeoutMs: milliseconds(values["heartbeat-timeout"], "--heartbeat-timeout"),
      reconnectInitialMs: milliseconds(values["reconnect-initial"], "--reconnect-initial"),
      reconnectMaxMs: milliseconds(values["reconnect-max"], "--reconnect-max"),
      onEvent: log,
    });
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error));
  }

  const shutdown = (): void => {
    void agent.close();
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
  void agent.stopped.then(({ reason }) => {
    process.exitCode = exitCodes[reason];
    // Sockets to the model server may linger in keep-alive; the agent is done.
    setTimeout(() => process.exit(exitCodes[reason]), 100).unref();
  });
}

main();
