import { z } from "zod";
import { GatewayError } from "../errors/gateway-error.js";
import { errorReply } from "../gateway/create-gateway.js";
import type { GatewayHeaders } from "../gateway/gateway-options.js";
import type { JsonReply } from "../gateway/gateway-request.js";
import { grantSubjectSchema } from "../permissions/permission-store.js";
import { parseInput } from "../validation/parse-input.js";
import { createManagedAllocationInputSchema, updateManagedAllocationInputSchema } from "./manage-allocations.js";
import { createManagedKeyInputSchema } from "./manage-keys.js";
import { createManagedProviderInputSchema, updateManagedProviderInputSchema } from "./manage-providers.js";
import type { Management } from "./management.js";
import { MAX_USAGE_RANGE_DAYS } from "./usage-range.js";

/** A management API request as an HTTP edge hands it over: already below the base path. */
export interface ManagementRequest {
  method: string;
  /** Below the base path: `/providers`, `/keys/key_123`, ... */
  path: string;
  query: URLSearchParams;
  headers: GatewayHeaders;
  /** Reads the body (bounded); called only by routes that take one. */
  readBody(): Promise<Uint8Array>;
  /** The framework's request object, for the host's `identify` hook. */
  raw: unknown;
  /** The origin the request came to (`http://127.0.0.1:8080`), for connect snippets. */
  origin: string | null;
}

interface RouteCall {
  actor: string;
  params: Record<string, string>;
  query: Record<string, string>;
  body(): Promise<Record<string, unknown>>;
  origin: string | null;
}

interface RouteResult {
  status?: number;
  body: unknown;
}

interface Route {
  method: "GET" | "POST" | "PATCH" | "DELETE";
  /** Segments; `:name` captures one. */
  pattern: string;
  handle(management: Management, call: RouteCall): Promise<RouteResult>;
}

const booleanQuery = z.enum(["true", "false"], { error: "must be 'true' or 'false'" }).transform((value) => value === "true");
const integerQuery = z
  .string()
  .regex(/^\d{1,15}$/, { error: "must be a whole number" })
  .transform(Number);
/** Epoch milliseconds as digits, or an ISO 8601 date or date-time, which the management call checks. */
const instantQuery = z
  .string()
  .min(1, { error: "must not be empty" })
  .transform((value) => (/^\d{1,16}$/.test(value) ? Number(value) : value));
const noQuery = z.strictObject({});
const usageRangeQuery = {
  days: integerQuery.pipe(z.number().min(1).max(MAX_USAGE_RANGE_DAYS)).optional(),
  from: instantQuery.optional(),
  to: instantQuery.optional(),
};

/** The body schemas: the programmatic inputs without what the URL and the session supply. */
const bodies = {
  createProvider: createManagedProviderInputSchema.omit({ actor: true }),
  updateProvider: updateManagedProviderInputSchema.omit({ actor: true, providerId: true }),
  createKey: createManagedKeyInputSchema.omit({ actor: true }),
  createAllocation: createManagedAllocationInputSchema.omit({ actor: true }),
  updateAllocation: updateManagedAllocationInputSchema.omit({ actor: true, allocationId: true }),
};

function query<Schema extends z.ZodType>(schema: Schema, call: RouteCall): z.output<Schema> {
  return parseInput(schema, call.query, "query");
}

async function body<Schema extends z.ZodType>(schema: Schema, call: RouteCall): Promise<z.output<Schema>> {
  return parseInput(schema, await call.body(), "request body");
}

const list = (data: unknown[]): RouteResult => ({ body: { data } });

/**
 * The JSON HTTP API, REST-style. Paths are relative to where the host mounts it (`/api/ai`).
 * Bodies are JSON objects; lists answer `{ "data": [...] }`; errors answer OpenAI's error shape.
 */
export const managementRoutes: readonly Route[] = [
  {
    method: "GET",
    pattern: "/me",
    handle: async (management, call) => {
      query(noQuery, call);
      return { body: await management.me({ actor: call.actor }) };
    },
  },
  {
    method: "GET",
    pattern: "/providers",
    handle: async (management, call) => {
      const { scope, models } = query(z.strictObject({ scope: z.enum(["use", "manage"]).optional(), models: booleanQuery.optional() }), call);
      return list(
        await management.listProviders({ actor: call.actor, ...(scope ? { scope } : {}), ...(models === undefined ? {} : { models }) }),
      );
    },
  },
  {
    method: "POST",
    pattern: "/providers",
    handle: async (management, call) => {
      query(noQuery, call);
      const input = await body(bodies.createProvider, call);
      return { status: 201, body: await management.createProvider({ ...input, actor: call.actor }) };
    },
  },
  {
    method: "GET",
    pattern: "/providers/:providerId",
    handle: async (management, call) => {
      query(noQuery, call);
      return { body: await management.getProvider({ actor: call.actor, providerId: call.params.providerId! }) };
    },
  },
  {
    method: "PATCH",
    pattern: "/providers/:providerId",
    handle: async (management, call) => {
      query(noQuery, call);
      const input = await body(bodies.updateProvider, call);
      return { body: await management.updateProvider({ ...input, actor: call.actor, providerId: call.params.providerId! }) };
    },
  },
  {
    method: "DELETE",
    pattern: "/providers/:providerId",
    handle: async (management, call) => {
      query(noQuery, call);
      return { body: await management.deleteProvider({ actor: call.actor, providerId: call.params.providerId! }) };
    },
  },
  {
    method: "POST",
    pattern: "/providers/:providerId/discover",
    handle: async (management, call) => {
      query(noQuery, call);
      return { body: await management.discoverModels({ actor: call.actor, providerId: call.params.providerId! }) };
    },
  },
  {
    method: "GET",
    pattern: "/providers/:providerId/grants",
    handle: async (management, call) => {
      query(noQuery, call);
      return list(await management.listGrants({ actor: call.actor, providerId: call.params.providerId! }));
    },
  },
  {
    method: "POST",
    pattern: "/providers/:providerId/grants",
    handle: async (management, call) => {
      query(noQuery, call);
      const subject = await body(grantSubjectSchema, call);
      return { body: await management.grant({ actor: call.actor, providerId: call.params.providerId!, subject }) };
    },
  },
  {
    method: "DELETE",
    pattern: "/providers/:providerId/grants",
    handle: async (management, call) => {
      // DELETE bodies are dropped by some clients and proxies: the subject goes in the query.
      const subject = query(grantSubjectSchema, call);
      return { body: await management.revokeGrant({ actor: call.actor, providerId: call.params.providerId!, subject }) };
    },
  },
  {
    method: "GET",
    pattern: "/keys",
    handle: async (management, call) => {
      const { name, includeRevoked } = query(
        z.strictObject({ name: z.string().max(100).optional(), includeRevoked: booleanQuery.optional() }),
        call,
      );
      return list(
        await management.listKeys({
          actor: call.actor,
          ...(name === undefined ? {} : { nameContains: name }),
          ...(includeRevoked === undefined ? {} : { includeRevoked }),
        }),
      );
    },
  },
  {
    method: "POST",
    pattern: "/keys",
    handle: async (management, call) => {
      query(noQuery, call);
      const input = await body(bodies.createKey, call);
      return { status: 201, body: await management.createKey({ ...input, actor: call.actor }) };
    },
  },
  {
    method: "DELETE",
    pattern: "/keys/:keyId",
    handle: async (management, call) => {
      query(noQuery, call);
      return { body: await management.revokeKey({ actor: call.actor, keyId: call.params.keyId! }) };
    },
  },
  {
    method: "GET",
    pattern: "/allocations",
    handle: async (management, call) => {
      const { all } = query(z.strictObject({ all: booleanQuery.optional() }), call);
      return list(await management.listAllocations({ actor: call.actor, ...(all === undefined ? {} : { all }) }));
    },
  },
  {
    method: "POST",
    pattern: "/allocations",
    handle: async (management, call) => {
      query(noQuery, call);
      const input = await body(bodies.createAllocation, call);
      return { status: 201, body: await management.createAllocation({ ...input, actor: call.actor }) };
    },
  },
  {
    method: "PATCH",
    pattern: "/allocations/:allocationId",
    handle: async (management, call) => {
      query(noQuery, call);
      const input = await body(bodies.updateAllocation, call);
      return { body: await management.updateAllocation({ ...input, actor: call.actor, allocationId: call.params.allocationId! }) };
    },
  },
  {
    method: "GET",
    pattern: "/usage",
    handle: async (management, call) => {
      const range = query(z.strictObject({ ...usageRangeQuery, breakdown: z.enum(["model", "key"]).optional() }), call);
      return { body: await management.usage({ ...range, actor: call.actor }) };
    },
  },
  {
    method: "GET",
    pattern: "/usage/organization",
    handle: async (management, call) => {
      const range = query(z.strictObject({ ...usageRangeQuery, breakdown: z.enum(["model", "user", "allocation"]).optional() }), call);
      return { body: await management.organizationUsage({ ...range, actor: call.actor }) };
    },
  },
  {
    method: "GET",
    pattern: "/connect",
    handle: async (management, call) => {
      query(noQuery, call);
      return { body: await management.connect({ actor: call.actor, ...(call.origin ? { origin: call.origin } : {}) }) };
    },
  },
];

/**
 * Serves one management request: finds the route (404, 405), identifies the caller with the
 * host's `identify` hook (401 without a session), validates the query and body (400 naming the
 * field, 415 for a body that is not JSON), and runs the call as that user.
 */
export async function handleManagementRequest(management: Management, request: ManagementRequest): Promise<JsonReply> {
  try {
    const path = request.path.length > 1 && request.path.endsWith("/") ? request.path.slice(0, -1) : request.path;
    const matched = matchRoute(request.method, path);
    const actor = await management.identify({ headers: request.headers, raw: request.raw });
    if (actor === null) {
      throw new GatewayError(
        "missing_identity",
        "Sign in first: the management API acts as the user of the host's login session (AI keys are not accepted here).",
      );
    }
    const result = await matched.route.handle(management, {
      actor,
      params: matched.params,
      query: queryObject(request.query),
      body: () => readJsonObject(request),
      origin: request.origin,
    });
    return json(result.status ?? 200, result.body);
  } catch (thrown) {
    const reply = errorReply(GatewayError.from(thrown));
    reply.headers["cache-control"] = "no-store";
    return reply;
  }
}

function matchRoute(method: string, path: string): { route: Route; params: Record<string, string> } {
  const segments = path.split("/").slice(1);
  const allowed: string[] = [];
  for (const route of managementRoutes) {
    const params = matchPattern(route.pattern, segments);
    if (!params) continue;
    if (route.method === method) return { route, params };
    allowed.push(route.method);
  }
  if (allowed.length === 0) throw new GatewayError("not_found", `Invalid URL (${method} ${path}).`);
  throw new GatewayError("method_not_allowed", `${method} is not allowed on ${path}; use ${allowed.join(", ")}.`, {
    headers: { allow: allowed.join(", ") },
  });
}

function matchPattern(pattern: string, segments: readonly string[]): Record<string, string> | null {
  const parts = pattern.split("/").slice(1);
  if (parts.length !== segments.length) return null;
  const params: Record<string, string> = {};
  for (const [index, part] of parts.entries()) {
    const segment = segments[index]!;
    if (part.startsWith(":")) {
      let value: string;
      try {
        value = decodeURIComponent(segment);
      } catch {
        return null;
      }
      if (value === "") return null;
      params[part.slice(1)] = value;
    } else if (part !== segment) {
      return null;
    }
  }
  return params;
}

/** The query as an object for a strict schema; a parameter given twice is refused, not guessed at. */
function queryObject(search: URLSearchParams): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of search) {
    if (Object.hasOwn(result, name)) {
      throw new GatewayError("invalid_request", `Invalid query: '${name}' must be given once.`, { param: name });
    }
    result[name] = value;
  }
  return result;
}

/**
 * The body as a JSON object. Requiring `application/json` is also what keeps a cross-site HTML
 * form from posting here with the user's session cookie: browsers preflight any other type.
 */
async function readJsonObject(request: ManagementRequest): Promise<Record<string, unknown>> {
  const contentType = request.headers.get("content-type");
  if (contentType === undefined || !/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(contentType.trim())) {
    throw new GatewayError(
      "unsupported_media_type",
      `Send the request body as JSON with 'Content-Type: application/json'${contentType ? ` (got '${contentType}')` : ""}.`,
    );
  }
  const bytes = await request.readBody();
  if (bytes.byteLength === 0) throw new GatewayError("invalid_request", "The request body is empty; send a JSON object.");
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"));
  } catch {
    throw new GatewayError("invalid_request", "The request body is not valid JSON.");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new GatewayError("invalid_request", "The request body must be a JSON object.");
  }
  return parsed as Record<string, unknown>;
}

function json(status: number, body: unknown): JsonReply {
  return {
    kind: "json",
    status,
    // Replies carry key secrets and settings: no cache may keep them.
    headers: { "content-type": "application/json", "cache-control": "no-store" },
    body: JSON.stringify(body),
  };
}
