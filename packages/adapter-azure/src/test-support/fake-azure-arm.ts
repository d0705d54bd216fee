/**
 * A fake Azure Resource Manager for Microsoft.CognitiveServices on a loopback socket, answering in
 * ARM's shapes (wire-formats §3.4): accounts (create, get, list by resource group, delete,
 * listKeys) and deployments (create, get, list, delete), long-running operations, and ARM's
 * `{"error":{"code","message"}}` failures. The SDK reaches it through `createLoopbackHttpClient`.
 *
 * Long-running operations, as ARM runs them:
 * - a deployment PUT answers 201 with `provisioningState: "Creating"` and an
 *   `Azure-AsyncOperation` header; the operation reads `Running` for `pollsUntilDone` polls, then
 *   `Succeeded` (or `Failed` with an error), and the deployment follows;
 * - an account PUT answers 201 with `provisioningState: "Accepted"` and no header: the SDK polls
 *   the account itself until it reads `Succeeded`.
 * Not exported from the package.
 */
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export const armOrigin = "https://management.azure.com";

interface FakeAccount {
  name: string;
  resourceGroup: string;
  location: string;
  kind: string;
  tags: Record<string, string>;
  provisioningState: string;
  /** Polls of the account left before it reads Succeeded. */
  pollsLeft: number;
  keys: { key1: string; key2: string };
  deployments: Map<string, FakeArmDeployment>;
}

export interface FakeArmDeployment {
  name: string;
  model: string;
  version: string;
  format: string;
  skuName: string;
  capacity: number;
  tags: Record<string, string>;
  provisioningState: string;
}

interface FakeOperation {
  id: string;
  location: string;
  pollsLeft: number;
  polls: number;
  failWith: { code: string; message: string } | null;
  onSucceeded(): void;
  onFailed(): void;
  status: "Running" | "Succeeded" | "Failed";
}

export interface RecordedArmRequest {
  method: string;
  path: string;
  apiVersion: string | null;
  authorization: string | undefined;
  body: unknown;
  status: number;
}

export interface FakeArmOptions {
  subscriptionId: string;
  /** Whether a bearer token is valid. Default: any non-empty one. */
  acceptsToken?: (token: string) => boolean;
  /** Operation polls before `Succeeded`. Default 2. */
  pollsUntilDone?: number;
  /** The endpoint an account reports (`properties.endpoint`): the fake data plane, in tests. */
  dataPlaneEndpoint?: (accountName: string) => string;
  /** Called when a deployment's creation succeeds, with the account's keys. */
  onDeploymentSucceeded?: (event: { account: string; deployment: FakeArmDeployment; keys: { key1: string; key2: string } }) => void;
  /** Models a region does not offer: `eastus2/gpt-4o-ultra`, or `*\/model` for every region. */
  unsupportedModels?: string[];
  /** Quota per `region/model`, in capacity units; a deployment beyond it is refused. */
  quota?: Record<string, number>;
  /** Actions the credential may not perform (`Microsoft.CognitiveServices/accounts/write`). */
  deniedActions?: string[];
  /** Deployment operations end `Failed` with this error instead of `Succeeded`. */
  failDeploymentOperations?: { code: string; message: string };
}

export interface FakeArm {
  /** The loopback base URL to route `https://management.azure.com` to. */
  readonly url: string;
  readonly requests: RecordedArmRequest[];
  /** An existing account, as if created outside Sluice. */
  seedAccount(input: { name: string; resourceGroup: string; location: string; kind?: string; tags?: Record<string, string>; deployments?: Array<Omit<FakeArmDeployment, "provisioningState" | "tags"> & { provisioningState?: string }> }): void;
  hasAccount(resourceGroup: string, name: string): boolean;
  account(resourceGroup: string, name: string): { tags: Record<string, string>; keys: { key1: string; key2: string }; deployments: FakeArmDeployment[] } | null;
  accountNames(resourceGroup: string): string[];
  /** Polls of operation-status URLs (`Azure-AsyncOperation`) so far, in total. */
  operationPolls(): number;
  /** Resolves once operation-status URLs have received `count` polls in total. */
  waitForOperationPolls(count: number, timeoutMs?: number): Promise<void>;
  setDeniedActions(actions: string[]): void;
  close(): Promise<void>;
}

const provider = "Microsoft.CognitiveServices";

function armError(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    request.setEncoding("utf8");
    request.on("data", (chunk: string) => (text += chunk));
    request.on("end", () => resolve(text));
    request.on("error", reject);
  });
}

/** The parsed body; the text itself when it is not JSON; null when empty. */
function parseJson(raw: string): unknown {
  if (raw === "") return null;
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

function normalizeRegion(location: string): string {
  return location.replaceAll(" ", "").toLowerCase();
}

export async function startFakeAzureArm(options: FakeArmOptions): Promise<FakeArm> {
  const { subscriptionId } = options;
  const acceptsToken = options.acceptsToken ?? ((token: string) => token !== "");
  const pollsUntilDone = options.pollsUntilDone ?? 2;
  let denied = new Set(options.deniedActions ?? []);
  const accounts = new Map<string, FakeAccount>();
  const operations = new Map<string, FakeOperation>();
  const requests: RecordedArmRequest[] = [];
  const sockets = new Set<Socket>();
  let totalPolls = 0;
  const pollWaiters: Array<() => void> = [];

  const accountKey = (resourceGroup: string, name: string) => `${resourceGroup.toLowerCase()}/${name.toLowerCase()}`;
  const accountId = (account: FakeAccount) => `/subscriptions/${subscriptionId}/resourceGroups/${account.resourceGroup}/providers/${provider}/accounts/${account.name}`;

  function accountJson(account: FakeAccount): unknown {
    return {
      id: accountId(account),
      name: account.name,
      type: `${provider}/accounts`,
      kind: account.kind,
      location: account.location,
      sku: { name: "S0" },
      tags: account.tags,
      etag: `"${account.provisioningState}"`,
      properties: {
        provisioningState: account.provisioningState,
        customSubDomainName: account.name,
        endpoint: options.dataPlaneEndpoint?.(account.name) ?? `https://${account.name}.openai.azure.com/`,
        endpoints: { "OpenAI Language Model Instance API": `https://${account.name}.openai.azure.com/` },
        publicNetworkAccess: "Enabled",
      },
    };
  }

  function deploymentJson(account: FakeAccount, deployment: FakeArmDeployment): unknown {
    return {
      id: `${accountId(account)}/deployments/${deployment.name}`,
      name: deployment.name,
      type: `${provider}/accounts/deployments`,
      sku: { name: deployment.skuName, capacity: deployment.capacity },
      tags: deployment.tags,
      properties: {
        model: { format: deployment.format, name: deployment.model, version: deployment.version },
        provisioningState: deployment.provisioningState,
        capabilities: { chatCompletion: "true" },
        rateLimits: [{ key: "request", renewalPeriod: 10, count: deployment.capacity }],
      },
    };
  }

  function send(response: ServerResponse, record: RecordedArmRequest, status: number, body: unknown, headers: Record<string, string> = {}): void {
    record.status = status;
    const text = body === undefined ? "" : typeof body === "string" ? body : JSON.stringify(body);
    response.writeHead(status, {
      "content-type": "application/json; charset=utf-8",
      "content-length": String(Buffer.byteLength(text)),
      "x-ms-request-id": randomBytes(8).toString("hex"),
      ...headers,
    });
    response.end(text);
  }

  function deniedFor(action: string, scope: string): string | null {
    if (!denied.has(action)) return null;
    return armError(
      "AuthorizationFailed",
      `The client '00000000-0000-0000-0000-0000000000aa' with object id '00000000-0000-0000-0000-0000000000aa' does not have authorization to perform action '${action}' over scope '${scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
    );
  }

  function startOperation(location: string, failWith: FakeOperation["failWith"], onSucceeded: () => void, onFailed: () => void): FakeOperation {
    const id = randomBytes(12).toString("hex");
    const operation: FakeOperation = { id, location, pollsLeft: pollsUntilDone, polls: 0, failWith, onSucceeded, onFailed, status: "Running" };
    operations.set(id, operation);
    return operation;
  }

  function operationUrl(operation: FakeOperation): string {
    return `${armOrigin}/subscriptions/${subscriptionId}/providers/${provider}/locations/${normalizeRegion(operation.location)}/operationResults/${operation.id}?api-version=2023-05-01`;
  }

  function quotaUsed(region: string, model: string): number {
    let used = 0;
    for (const account of accounts.values()) {
      if (normalizeRegion(account.location) !== region) continue;
      for (const deployment of account.deployments.values()) if (deployment.model === model) used += deployment.capacity;
    }
    return used;
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? "/", armOrigin);
    const method = request.method ?? "GET";
    const raw = method === "PUT" || method === "POST" ? await readBody(request) : "";
    const body = parseJson(raw);
    const record: RecordedArmRequest = {
      method,
      path: url.pathname,
      apiVersion: url.searchParams.get("api-version"),
      authorization: request.headers.authorization,
      body,
      status: 0,
    };
    requests.push(record);

    const authorization = request.headers.authorization;
    if (typeof authorization !== "string" || !authorization.startsWith("Bearer ") || !acceptsToken(authorization.slice(7))) {
      return send(response, record, 401, armError("InvalidAuthenticationToken", "The access token is invalid."), {
        "www-authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token"',
      });
    }
    if (record.apiVersion === null) {
      return send(response, record, 400, armError("MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests."));
    }

    const operationMatch = new RegExp(`^/subscriptions/([^/]+)/providers/${provider}/locations/([^/]+)/operationResults/([^/]+)$`, "i").exec(url.pathname);
    if (operationMatch !== null && method === "GET") {
      const operation = operations.get(operationMatch[3]!);
      if (operation === undefined) return send(response, record, 404, armError("OperationNotFound", "The operation was not found."));
      if (operation.status === "Running") {
        operation.polls += 1;
        totalPolls += 1;
        for (const wake of pollWaiters.splice(0)) wake();
        operation.pollsLeft -= 1;
        if (operation.pollsLeft <= 0) {
          if (operation.failWith === null) {
            operation.status = "Succeeded";
            operation.onSucceeded();
          } else {
            operation.status = "Failed";
            operation.onFailed();
          }
        }
      }
      return send(response, record, 200, {
        id: url.pathname,
        name: operation.id,
        status: operation.status,
        startTime: "2026-01-05T12:00:00Z",
        ...(operation.status === "Failed" ? { error: operation.failWith } : {}),
      });
    }

    const match = new RegExp(
      `^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/${provider}/accounts(?:/([^/]+)(?:/(listKeys|deployments)(?:/([^/]+))?)?)?$`,
      "i",
    ).exec(url.pathname);
    if (match === null) return send(response, record, 404, armError("InvalidResourceType", `The resource type could not be found for ${url.pathname}.`));
    const [, subscription, resourceGroup, accountName, child, deploymentName] = match;
    if (subscription !== subscriptionId) {
      return send(response, record, 404, armError("SubscriptionNotFound", `The subscription '${subscription}' could not be found.`));
    }
    const scope = url.pathname;

    if (accountName === undefined) {
      if (method !== "GET") return send(response, record, 405, armError("MethodNotAllowed", "Method not allowed."));
      const refusal = deniedFor(`${provider}/accounts/read`, scope);
      if (refusal !== null) return send(response, record, 403, refusal);
      const value = [...accounts.values()].filter((account) => account.resourceGroup.toLowerCase() === resourceGroup!.toLowerCase()).map(accountJson);
      return send(response, record, 200, { value });
    }

    const key = accountKey(resourceGroup!, accountName);
    const account = accounts.get(key);
    const accountNotFound = () =>
      send(
        response,
        record,
        404,
        armError(
          "ResourceNotFound",
          `The Resource '${provider}/accounts/${accountName}' under resource group '${resourceGroup}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`,
        ),
      );

    if (child === undefined) {
      if (method === "GET") {
        const refusal = deniedFor(`${provider}/accounts/read`, scope);
        if (refusal !== null) return send(response, record, 403, refusal);
        if (account === undefined) return accountNotFound();
        // Body-mode polling: every read brings a creating account closer to done.
        if (account.provisioningState !== "Succeeded" && account.pollsLeft > 0) {
          account.pollsLeft -= 1;
          if (account.pollsLeft === 0) account.provisioningState = "Succeeded";
        }
        return send(response, record, 200, accountJson(account));
      }
      if (method === "PUT") {
        const refusal = deniedFor(`${provider}/accounts/write`, scope);
        if (refusal !== null) return send(response, record, 403, refusal);
        if (account !== undefined) return send(response, record, 200, accountJson(account));
        const input = body as { kind?: string; location?: string; tags?: Record<string, string>; properties?: { customSubDomainName?: string } } | null;
        if (input?.kind === undefined || input.location === undefined) {
          return send(response, record, 400, armError("InvalidRequestContent", "The request content was invalid: 'kind' and 'location' are required."));
        }
        if (input.properties?.customSubDomainName !== accountName) {
          return send(response, record, 400, armError("CustomSubDomainNameRequired", "The custom subdomain name must be set and match the account name."));
        }
        const created: FakeAccount = {
          name: accountName,
          resourceGroup: resourceGroup!,
          location: input.location,
          kind: input.kind,
          tags: input.tags ?? {},
          provisioningState: "Accepted",
          pollsLeft: pollsUntilDone,
          keys: { key1: randomBytes(16).toString("hex"), key2: randomBytes(16).toString("hex") },
          deployments: new Map(),
        };
        accounts.set(key, created);
        return send(response, record, 201, accountJson(created));
      }
      if (method === "DELETE") {
        const refusal = deniedFor(`${provider}/accounts/delete`, scope);
        if (refusal !== null) return send(response, record, 403, refusal);
        if (account === undefined) return send(response, record, 204, undefined);
        accounts.delete(key);
        return send(response, record, 200, undefined);
      }
      return send(response, record, 405, armError("MethodNotAllowed", "Method not allowed."));
    }

    if (account === undefined) return accountNotFound();

    if (child.toLowerCase() === "listkeys") {
      if (method !== "POST") return send(response, record, 405, armError("MethodNotAllowed", "Method not allowed."));
      const refusal = deniedFor(`${provider}/accounts/listKeys/action`, scope);
      if (refusal !== null) return send(response, record, 403, refusal);
      return send(response, record, 200, account.keys);
    }

    if (deploymentName === undefined) {
      if (method !== "GET") return send(response, record, 405, armError("MethodNotAllowed", "Method not allowed."));
      const refusal = deniedFor(`${provider}/accounts/deployments/read`, scope);
      if (refusal !== null) return send(response, record, 403, refusal);
      return send(response, record, 200, { value: [...account.deployments.values()].map((deployment) => deploymentJson(account, deployment)) });
    }

    const deployment = account.deployments.get(deploymentName);
    if (method === "GET") {
      const refusal = deniedFor(`${provider}/accounts/deployments/read`, scope);
      if (refusal !== null) return send(response, record, 403, refusal);
      if (deployment === undefined) {
        return send(response, record, 404, armError("DeploymentNotFound", `Deployment '${deploymentName}' not found.`));
      }
      return send(response, record, 200, deploymentJson(account, deployment));
    }
    if (method === "DELETE") {
      const refusal = deniedFor(`${provider}/accounts/deployments/delete`, scope);
      if (refusal !== null) return send(response, record, 403, refusal);
      if (deployment === undefined) return send(response, record, 204, undefined);
      account.deployments.delete(deploymentName);
      return send(response, record, 200, undefined);
    }
    if (method !== "PUT") return send(response, record, 405, armError("MethodNotAllowed", "Method not allowed."));
    const refusal = deniedFor(`${provider}/accounts/deployments/write`, scope);
    if (refusal !== null) return send(response, record, 403, refusal);
    if (account.provisioningState !== "Succeeded") {
      return send(response, record, 409, armError("AccountProvisioningStateInvalid", `Account ${account.name} in state ${account.provisioningState} cannot be used.`));
    }
    const input = body as { sku?: { name?: string; capacity?: number }; properties?: { model?: { format?: string; name?: string; version?: string } }; tags?: Record<string, string> } | null;
    const model = input?.properties?.model;
    if (model?.name === undefined || model.format === undefined || input?.sku?.name === undefined) {
      return send(response, record, 400, armError("InvalidResourceProperties", "The deployment's model name, format and SKU are required."));
    }
    if (deployment !== undefined) {
      // ARM's PUT is idempotent: the same deployment again answers with its current state.
      return send(response, record, 200, deploymentJson(account, deployment));
    }
    const region = normalizeRegion(account.location);
    const version = model.version ?? "2024-08-06";
    if ((options.unsupportedModels ?? []).some((entry) => entry === `${region}/${model.name}` || entry === `*/${model.name}`)) {
      return send(
        response,
        record,
        400,
        armError(
          "DeploymentModelNotSupported",
          `The model 'Format:${model.format},Name:${model.name},Version:${version}' of account deployment is not supported in this region '${region}'.`,
        ),
      );
    }
    const capacity = input.sku.capacity ?? 1;
    const limit = options.quota?.[`${region}/${model.name}`];
    if (limit !== undefined) {
      const used = quotaUsed(region, model.name);
      if (used + capacity > limit) {
        const quotaName = `Tokens Per Minute (thousands) - ${model.name} - ${input.sku.name}`;
        return send(
          response,
          record,
          400,
          armError(
            "InsufficientQuota",
            `This operation require ${capacity} new capacity in quota ${quotaName}, which is bigger than the current available capacity ${Math.max(0, limit - used)}. The current quota usage is ${used} and the quota limit is ${limit} for quota ${quotaName}.`,
          ),
        );
      }
    }
    const created: FakeArmDeployment = {
      name: deploymentName,
      model: model.name,
      version,
      format: model.format,
      skuName: input.sku.name,
      capacity,
      tags: input.tags ?? {},
      provisioningState: "Creating",
    };
    account.deployments.set(deploymentName, created);
    const operation = startOperation(
      account.location,
      options.failDeploymentOperations ?? null,
      () => {
        created.provisioningState = "Succeeded";
        options.onDeploymentSucceeded?.({ account: account.name, deployment: created, keys: account.keys });
      },
      () => {
        created.provisioningState = "Failed";
      },
    );
    return send(response, record, 201, deploymentJson(account, created), { "azure-asyncoperation": operationUrl(operation) });
  }

  const server = createServer({ keepAlive: true }, (request, response) => {
    handle(request, response).catch(() => {
      if (!response.headersSent) {
        response.writeHead(500, { "content-type": "application/json" });
        response.end(armError("InternalServerError", "Encountered internal server error."));
      } else {
        response.destroy();
      }
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    seedAccount(input) {
      const account: FakeAccount = {
        name: input.name,
        resourceGroup: input.resourceGroup,
        location: input.location,
        kind: input.kind ?? "OpenAI",
        tags: input.tags ?? {},
        provisioningState: "Succeeded",
        pollsLeft: 0,
        keys: { key1: randomBytes(16).toString("hex"), key2: randomBytes(16).toString("hex") },
        deployments: new Map(),
      };
      for (const deployment of input.deployments ?? []) {
        account.deployments.set(deployment.name, { ...deployment, tags: {}, provisioningState: deployment.provisioningState ?? "Succeeded" });
      }
      accounts.set(accountKey(input.resourceGroup, input.name), account);
    },
    hasAccount(resourceGroup, name) {
      return accounts.has(accountKey(resourceGroup, name));
    },
    account(resourceGroup, name) {
      const account = accounts.get(accountKey(resourceGroup, name));
      if (account === undefined) return null;
      return { tags: { ...account.tags }, keys: { ...account.keys }, deployments: [...account.deployments.values()].map((deployment) => ({ ...deployment })) };
    },
    accountNames(resourceGroup) {
      return [...accounts.values()].filter((account) => account.resourceGroup === resourceGroup).map((account) => account.name);
    },
    operationPolls: () => totalPolls,
    waitForOperationPolls(count, timeoutMs = 5_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${totalPolls} polls within ${timeoutMs} ms`)), timeoutMs);
        const check = () => {
          if (totalPolls >= count) {
            clearTimeout(timer);
            resolve();
          } else {
            pollWaiters.push(check);
          }
        };
        check();
      });
    },
    setDeniedActions(actions) {
      denied = new Set(actions);
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
