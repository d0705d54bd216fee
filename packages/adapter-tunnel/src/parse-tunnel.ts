import { GatewayError, principalIdSchema } from "@sluice/core";
import { tunnelStatuses } from "./tunnel-directory.js";
import type { Tunnel, TunnelStatus } from "./tunnel-directory.js";

const tunnelIdPattern = /^[A-Za-z0-9._-]{1,100}$/;
const tunnelKeys = new Set(["id", "userId", "sessionId", "name", "openai", "status", "target"]);

/** What a host passes to `upsert`: a Tunnel whose `name` defaults to its `sessionId`. */
export type TunnelInput = Omit<Tunnel, "name"> & { name?: string };

function invalid(param: string, message: string): GatewayError {
  return new GatewayError("invalid_request", `Invalid tunnel: '${param}' ${message}`, { param });
}

export function parseTunnelId(value: unknown, param = "id"): string {
  if (typeof value !== "string" || !tunnelIdPattern.test(value)) {
    throw invalid(param, "must be 1-100 letters, digits, '.', '_' or '-'");
  }
  return value;
}

export function parseTunnelStatus(value: unknown, param = "status"): TunnelStatus {
  if (!(tunnelStatuses as readonly unknown[]).includes(value)) throw invalid(param, "must be 'running' or 'stopped'");
  return value as TunnelStatus;
}

function text(value: unknown, param: string, max: number): string {
  if (typeof value !== "string" || value.trim() === "") throw invalid(param, "must be a non-empty string");
  if (value.length > max) throw invalid(param, `must be at most ${max} characters`);
  return value;
}

/** A user id as the stores accept it (core's `principalIdSchema`). */
export function parseUserId(value: unknown, param = "userId"): string {
  const parsed = principalIdSchema.safeParse(value);
  if (!parsed.success) throw invalid(param, parsed.error.issues[0]?.message ?? "is invalid");
  return parsed.data;
}

/** An http(s) URL without credentials: where the host's tunnel delivers requests. */
export function parseTargetUrl(value: unknown, param = "target"): string {
  let url: URL;
  try {
    url = new URL(text(value, param, 2_000));
  } catch (error) {
    if (GatewayError.is(error)) throw error;
    throw invalid(param, "must be an absolute http(s) URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw invalid(param, "must be an absolute http(s) URL");
  if (url.username !== "" || url.password !== "") throw invalid(param, "must not contain credentials");
  if (url.search !== "" || url.hash !== "") throw invalid(param, "must not have a query or a fragment");
  return url.href;
}

/** Checks a host's tunnel at the trust boundary; a 400 GatewayError naming the field otherwise. */
export function parseTunnel(value: unknown): Tunnel {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new GatewayError("invalid_request", "Invalid tunnel: must be an object.");
  }
  const input = value as Record<string, unknown>;
  for (const key of Object.keys(input)) if (!tunnelKeys.has(key)) throw invalid(key, "is not a tunnel field");
  if (typeof input.openai !== "boolean") throw invalid("openai", "must be a boolean");
  const sessionId = text(input.sessionId, "sessionId", 200);
  return {
    id: parseTunnelId(input.id),
    userId: parseUserId(input.userId),
    sessionId,
    name: input.name === undefined ? sessionId : text(input.name, "name", 200),
    openai: input.openai,
    status: parseTunnelStatus(input.status),
    target: parseTargetUrl(input.target),
  };
}
