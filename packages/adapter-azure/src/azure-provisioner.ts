import { randomInt } from "node:crypto";
import { CognitiveServicesManagementClient } from "@azure/arm-cognitiveservices";
import type {
  Account,
  CognitiveServicesManagementClientOptionalParams,
  Deployment as ArmDeployment,
} from "@azure/arm-cognitiveservices";
import type { TokenCredential } from "@azure/core-auth";
import { GatewayError, systemClock } from "@sluice/core";
import type { Clock, ProviderCatalog, ProviderRecord, UpdateProviderInput } from "@sluice/core";
import { describeArmFailure, formatArmFailure, isArmNotFound } from "./arm-errors.js";
import type { ArmFailure } from "./arm-errors.js";
import { formatAzureEndpoint, parseAzureEndpoint } from "./azure-endpoint.js";
import { parseAzureSettings } from "./azure-settings.js";
import type {
  AzureApiShape,
  AzureAuthMode,
  AzureDeploymentSettings,
  AzureManagedSettings,
  AzureOpenAISettings,
  AzureProvisioningState,
} from "./azure-settings.js";
import { parseAccountResourceId, readAzureAccount } from "./discover-azure-deployments.js";

export interface AzureProvisionerOptions {
  /** Where provider records live: the provisioner keeps its progress in their settings. */
  catalog: ProviderCatalog;
  /**
   * The organization's credential for Azure Resource Manager: any TokenCredential from
   * @azure/identity. It needs to create accounts and deployments in the resource group
   * (Cognitive Services Contributor) and, for `dataPlaneAuth: "api-key"`, to list keys.
   */
  credential: TokenCredential;
  /** The subscription to deploy in, unless a provider's `managed.subscriptionId` says otherwise. */
  subscriptionId: string;
  /** The resource group to deploy in, unless a provider's `managed.resourceGroup` says otherwise. */
  resourceGroup: string;
  /** Start of the names of the accounts Sluice creates (`sluice-eastus2-k3x9q2`). Default `sluice`. */
  accountNamePrefix?: string;
  /**
   * How provisioned providers call the data plane: `api-key` (default; the account's key1 is
   * stored as the provider's `apiKey` secret) or `entra` (the data-plane adapter's credential,
   * whose identity then needs a data-plane role on the account).
   */
  dataPlaneAuth?: AzureAuthMode;
  /** The URL shape provisioned providers use. Default `deployments`. */
  apiShape?: AzureApiShape;
  /** The api-version provisioned providers use; the shape's default when absent. */
  apiVersion?: string;
  /**
   * Passed to every CognitiveServicesManagementClient: a sovereign cloud's `endpoint` and
   * `credentialScopes`, retry options, or an `httpClient` (how the tests reach a fake ARM).
   */
  managementClientOptions?: CognitiveServicesManagementClientOptionalParams;
  /** The wait between two polls of a long-running operation. Default 5 000 ms. */
  pollIntervalMs?: number;
  /** Where the provisioning state's timestamps come from. Default: the system clock. */
  clock?: Clock;
}

/** What `resumeAll` did. */
export interface AzureResumeSummary {
  provisioned: string[];
  failed: string[];
  deleted: string[];
  /** Jobs that stopped without an outcome: the provisioner was closed, or the catalog failed. */
  errors: Array<{ providerId: string; error: GatewayError }>;
}

/**
 * Provisions `azure-openai` providers through Azure Resource Manager, and tears them down.
 *
 * Every step is recorded in the record's `settings.provisioning` before Azure is asked to act, and
 * every Azure step is idempotent (PUT, GET, DELETE), so a gateway restarted half-way resumes where
 * the last one stopped: `resumeAll()` at start. Azure's long-running operations are followed with
 * the SDK's poller, whose serialized state is kept in the record (`operation.resumeFrom`), so a
 * resumed provisioning goes on polling the same operation instead of starting another.
 *
 * One provisioner per process. Jobs for one provider never run twice at once within it; across
 * processes, two instances resuming the same record converge on the same account and deployment.
 */
export interface AzureProvisioner {
  /**
   * Makes the provider ready and resolves with its final record:
   * - managed (`settings.managed`): finds or creates the region's account, deploys the model,
   *   waits for Azure, and records `endpoint`, `deployments` and the `apiKey` secret; status
   *   `provisioning` -> `provisioned`;
   * - attached by resource id (`settings.resourceId`): reads the endpoint and deployments from ARM;
   * - attached by hand: marks it `provisioned`.
   *
   * An Azure refusal (quota, a model the region does not offer, missing permissions) resolves with
   * status `failed` and Azure's message as `statusReason`; calling `provision` again retries.
   * Rejects only when the record is unknown (404) or being deleted (409), when the catalog fails,
   * or when the provisioner is closed mid-way (the record stays `provisioning`, for `resumeAll`).
   */
  provision(provider: ProviderRecord | string): Promise<ProviderRecord>;
  /**
   * Deletes the provider: its Azure deployment, the account when Sluice created it and nothing
   * else uses it, then the record. Stops a provisioning in progress first. Idempotent: resolves
   * false when the record was already gone. When Azure refuses, rejects with a 502 and keeps the
   * record (phase `deleting`, with Azure's message), so a later call or `resumeAll` retries.
   */
  deprovision(provider: ProviderRecord | string): Promise<boolean>;
  /** Resumes every provisioning and deletion a stopped gateway left half-way; resolves when all are settled. */
  resumeAll(): Promise<AzureResumeSummary>;
  /** Stops every job where it is, writing nothing more; their state stays for `resumeAll`. Idempotent. */
  close(): Promise<void>;
}

/** An Azure state Sluice refuses to go on from, reported like ARM's own failures. */
class ProvisioningFailure extends Error {
  constructor(readonly failure: ArmFailure) {
    super(failure.message);
  }
}

interface Job {
  kind: "provision" | "deprovision";
  controller: AbortController;
  promise: Promise<unknown>;
}

const managedByTag = "managed-by";
const providerTag = "sluice-provider";

export function createAzureProvisioner(options: AzureProvisionerOptions): AzureProvisioner {
  const { catalog, credential } = options;
  const clock = options.clock ?? systemClock;
  const pollIntervalMs = options.pollIntervalMs ?? 5_000;
  const accountNamePrefix = (options.accountNamePrefix ?? "sluice").toLowerCase();
  const dataPlaneAuth = options.dataPlaneAuth ?? "api-key";
  const clients = new Map<string, CognitiveServicesManagementClient>();
  const jobs = new Map<string, Job>();
  const accountLocks = new Map<string, Promise<unknown>>();
  let closed = false;

  function arm(subscriptionId: string): CognitiveServicesManagementClient {
    let client = clients.get(subscriptionId);
    if (client === undefined) {
      client = new CognitiveServicesManagementClient(credential, subscriptionId, options.managementClientOptions);
      clients.set(subscriptionId, client);
    }
    return client;
  }

  function closedError(): GatewayError {
    return new GatewayError(
      "provider_unavailable",
      "The Azure provisioning job was stopped (the provisioner closed, or the provider is being deleted); resumeAll() picks up what is left.",
    );
  }

  function start<T>(providerId: string, kind: Job["kind"], work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (closed) return Promise.reject(closedError());
    const running = jobs.get(providerId);
    if (running !== undefined && running.kind === kind) return running.promise as Promise<T>;
    const controller = new AbortController();
    // A deletion stops a provisioning in progress first; a provisioning waits for a deletion to
    // settle (and then finds the record gone, or still deleting).
    const before = running === undefined ? Promise.resolve() : settle(running, kind === "deprovision");
    const promise = before.then(() => {
      if (controller.signal.aborted) throw closedError();
      return work(controller.signal);
    });
    const job: Job = { kind, controller, promise };
    jobs.set(providerId, job);
    promise
      .finally(() => {
        if (jobs.get(providerId) === job) jobs.delete(providerId);
      })
      .catch(() => undefined);
    return promise;
  }

  async function settle(job: Job, abort: boolean): Promise<void> {
    if (abort) job.controller.abort();
    await job.promise.catch(() => undefined);
  }

  async function load(providerId: string): Promise<ProviderRecord> {
    const record = await catalog.get(providerId);
    if (record === null) throw new GatewayError("not_found", `No provider has the id '${providerId}'.`);
    if (record.kind !== "azure-openai") {
      throw new GatewayError("invalid_request", `The provider '${record.name}' is of kind '${record.kind}', not azure-openai.`);
    }
    return record;
  }

  /** An update computed from the latest record, retried when another write got in first. */
  async function save(providerId: string, build: (latest: ProviderRecord) => UpdateProviderInput): Promise<ProviderRecord> {
    for (let attempt = 1; ; attempt++) {
      const latest = await load(providerId);
      try {
        return await catalog.update(providerId, build(latest), { expectedVersion: latest.version });
      } catch (error) {
        if (!(GatewayError.is(error) && error.code === "conflict" && attempt < 5)) throw error;
      }
    }
  }

  function sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(closedError());
      const onAbort = () => {
        clearTimeout(timer);
        reject(closedError());
      };
      const timer = setTimeout(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Serializes finding-or-creating the account of one region, so concurrent providers share one. */
  async function withAccountLock<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = accountLocks.get(key) ?? Promise.resolve();
    const current = previous.catch(() => undefined).then(work);
    accountLocks.set(key, current);
    try {
      return await current;
    } finally {
      if (accountLocks.get(key) === current) accountLocks.delete(key);
    }
  }

  // ---- provisioning ------------------------------------------------------------------------

  async function provisionJob(providerId: string, signal: AbortSignal): Promise<ProviderRecord> {
    const record = await load(providerId);
    const settings = parseAzureSettings(record.settings);
    if (settings.managed !== undefined) return provisionManaged(record, settings.managed, settings, signal);
    if (settings.resourceId !== undefined) return attachByResourceId(record, settings, signal);
    if (record.status === "provisioned") return record;
    return save(providerId, () => ({ status: "provisioned", statusReason: null }));
  }

  async function provisionManaged(
    record: ProviderRecord,
    managed: AzureManagedSettings,
    settings: AzureOpenAISettings,
    signal: AbortSignal,
  ): Promise<ProviderRecord> {
    const providerId = record.id;
    const previous = settings.provisioning;
    if (previous?.phase === "ready") {
      return record.status === "provisioned" ? record : save(providerId, () => ({ status: "provisioned", statusReason: null }));
    }
    if (previous?.phase === "deleting") {
      throw new GatewayError("conflict", `The provider '${record.name}' is being deleted.`);
    }
    const now = clock.now();
    let state: AzureProvisioningState =
      previous === undefined
        ? {
            phase: "pending",
            subscriptionId: managed.subscriptionId ?? options.subscriptionId,
            resourceGroup: managed.resourceGroup ?? options.resourceGroup,
            region: managed.region,
            accountName: null,
            accountCreated: false,
            deploymentName: null,
            operation: null,
            startedAt: now,
            updatedAt: now,
            error: null,
          }
        : // A failed provisioning is retried from where it stopped: the account chosen stays.
          { ...previous, phase: previous.phase === "failed" ? "pending" : previous.phase, error: null, updatedAt: now };
    const { subscriptionId, resourceGroup, region } = state;
    const client = arm(subscriptionId);

    /** Writes the state (merged into the latest stored one) and, optionally, status fields. */
    async function update(patch: Partial<AzureProvisioningState>, extra: Omit<UpdateProviderInput, "settings"> = {}): Promise<void> {
      if (signal.aborted) throw closedError();
      const written = await save(providerId, (latest) => {
        const stored = (latest.settings.provisioning as AzureProvisioningState | undefined) ?? state;
        return {
          ...extra,
          settings: { ...latest.settings, provisioning: { ...stored, ...patch, updatedAt: clock.now() } },
        };
      });
      state = written.settings.provisioning as AzureProvisioningState;
    }

    /** Follows a long-running operation to its end, recording the poller after every poll. */
    async function follow<T>(
      poller: {
        isDone(): boolean;
        poll(options: { abortSignal: AbortSignal }): Promise<void>;
        toString(): string;
        getOperationState(): { status: string };
        getResult(): T | undefined;
      },
      kind: "account-create" | "deployment-create",
    ): Promise<T | undefined> {
      // begin*() has already polled once, whether it started the operation or resumed it.
      let polls = (state.operation?.kind === kind ? state.operation.polls : 0) + 1;
      const record = () => update({ operation: { kind, resumeFrom: poller.toString(), status: poller.getOperationState().status, polls } });
      await record();
      while (!poller.isDone()) {
        await sleep(pollIntervalMs, signal);
        await poller.poll({ abortSignal: signal });
        polls += 1;
        await record();
      }
      return poller.getResult();
    }

    async function getAccount(name: string): Promise<Account | null> {
      try {
        return await client.accounts.get(resourceGroup, name, { abortSignal: signal });
      } catch (error) {
        if (isArmNotFound(error)) return null;
        throw error;
      }
    }

    async function chooseAccount(): Promise<{ name: string; created: boolean }> {
      if (managed.accountName !== undefined) {
        return { name: managed.accountName, created: (await getAccount(managed.accountName)) === null };
      }
      const candidates: Account[] = [];
      for await (const account of client.accounts.listByResourceGroup(resourceGroup, { abortSignal: signal })) {
        if (account.name === undefined || account.kind?.toLowerCase() !== "openai") continue;
        if (normalizeRegion(account.location) !== region) continue;
        const provisioningState = account.properties?.provisioningState;
        if (provisioningState === "Failed" || provisioningState === "Deleting") continue;
        candidates.push(account);
      }
      // Accounts Sluice made come first, so providers of one region gather in one account.
      candidates.sort(
        (a, b) => Number(b.tags?.[managedByTag] === "sluice") - Number(a.tags?.[managedByTag] === "sluice") || a.name!.localeCompare(b.name!),
      );
      const found = candidates[0];
      if (found !== undefined) return { name: found.name!, created: false };
      return { name: newAccountName(accountNamePrefix, region), created: true };
    }

    function accountBody(name: string): Account {
      return {
        kind: "OpenAI",
        location: region,
        sku: { name: "S0" },
        // The custom subdomain gives the account its own endpoint (https://{name}.openai.azure.com),
        // which Entra ID authentication requires.
        properties: { customSubDomainName: name, publicNetworkAccess: "Enabled" },
        tags: { ...managed.resourceTags, [managedByTag]: "sluice", [providerTag]: providerId },
      };
    }

    async function ensureAccount(): Promise<string> {
      if (state.accountName === null) {
        const chosen = await chooseAccount();
        await update(
          { phase: "account", accountName: chosen.name, accountCreated: chosen.created, operation: null },
          { statusReason: chosen.created ? `Creating the Azure OpenAI account '${chosen.name}' in ${region}.` : `Using the Azure OpenAI account '${chosen.name}' in ${region}.` },
        );
      } else if (state.phase === "pending") {
        await update({ phase: "account" });
      }
      const name = state.accountName!;
      for (;;) {
        if (state.operation?.kind === "account-create") {
          const poller = await client.accounts.beginCreate(resourceGroup, name, accountBody(name), {
            resumeFrom: state.operation.resumeFrom,
            updateIntervalInMs: pollIntervalMs,
            abortSignal: signal,
          });
          const created = await follow(poller, "account-create");
          await update({ operation: null });
          if (created?.properties?.provisioningState === "Succeeded" && created.properties.endpoint !== undefined) {
            return created.properties.endpoint;
          }
          continue;
        }
        const existing = await getAccount(name);
        if (existing === null) {
          // Not there (yet): create it. An account found earlier that vanished is recreated too,
          // and then counts as Sluice's.
          if (!state.accountCreated) await update({ accountCreated: true });
          const poller = await client.accounts.beginCreate(resourceGroup, name, accountBody(name), {
            updateIntervalInMs: pollIntervalMs,
            abortSignal: signal,
          });
          await follow(poller, "account-create");
          await update({ operation: null });
          continue;
        }
        const provisioningState = existing.properties?.provisioningState;
        if (provisioningState === "Succeeded") {
          const endpoint = existing.properties?.endpoint;
          if (endpoint === undefined) {
            throw new ProvisioningFailure({ code: "AccountWithoutEndpoint", message: `The Azure account '${name}' reports no endpoint.`, status: null });
          }
          return endpoint;
        }
        if (provisioningState === "Failed" || provisioningState === "Deleting") {
          throw new ProvisioningFailure({
            code: "AccountNotUsable",
            message: `The Azure OpenAI account '${name}' is in the state '${provisioningState}'.`,
            status: null,
          });
        }
        // Creating, Accepted, ResolvingDNS: another job (or a lost operation) is still at it.
        await sleep(pollIntervalMs, signal);
      }
    }

    async function getDeployment(accountName: string, name: string): Promise<ArmDeployment | null> {
      try {
        return await client.deployments.get(resourceGroup, accountName, name, { abortSignal: signal });
      } catch (error) {
        if (isArmNotFound(error)) return null;
        throw error;
      }
    }

    async function chooseDeploymentName(accountName: string): Promise<string> {
      const taken = new Set<string>();
      for await (const deployment of client.deployments.list(resourceGroup, accountName, { abortSignal: signal })) {
        if (deployment.name !== undefined) taken.add(deployment.name);
      }
      if (managed.deploymentName !== undefined) {
        if (taken.has(managed.deploymentName)) {
          throw new ProvisioningFailure({
            code: "DeploymentNameTaken",
            message: `The account '${accountName}' already has a deployment named '${managed.deploymentName}'.`,
            status: null,
          });
        }
        return managed.deploymentName;
      }
      // The model's name when free, which makes the model id `owner:provider/gpt-4o`; another
      // provider of the same model in a shared account gets `gpt-4o-2`.
      const base = managed.model.replace(/[^A-Za-z0-9._-]/g, "-").slice(0, 60);
      for (let n = 1; ; n++) {
        const candidate = n === 1 ? base : `${base}-${n}`;
        if (!taken.has(candidate)) return candidate;
      }
    }

    function deploymentBody(): ArmDeployment {
      return {
        sku: { name: managed.sku.name, capacity: managed.sku.capacity },
        properties: {
          model: { format: managed.modelFormat, name: managed.model, ...(managed.modelVersion === undefined ? {} : { version: managed.modelVersion }) },
        },
        tags: { ...managed.resourceTags, [managedByTag]: "sluice", [providerTag]: providerId },
      };
    }

    async function ensureDeployment(accountName: string): Promise<string> {
      if (state.deploymentName === null) {
        const name = await chooseDeploymentName(accountName);
        await update(
          { phase: "deployment", deploymentName: name, operation: null },
          { statusReason: `Deploying ${managed.model} as '${name}' in the account '${accountName}'.` },
        );
      } else if (state.phase !== "deployment") {
        await update({ phase: "deployment" });
      }
      const name = state.deploymentName!;
      for (;;) {
        if (state.operation?.kind === "deployment-create") {
          const poller = await client.deployments.beginCreateOrUpdate(resourceGroup, accountName, name, deploymentBody(), {
            resumeFrom: state.operation.resumeFrom,
            updateIntervalInMs: pollIntervalMs,
            abortSignal: signal,
          });
          await follow(poller, "deployment-create");
          await update({ operation: null });
          continue;
        }
        const existing = await getDeployment(accountName, name);
        if (existing === null) {
          const poller = await client.deployments.beginCreateOrUpdate(resourceGroup, accountName, name, deploymentBody(), {
            updateIntervalInMs: pollIntervalMs,
            abortSignal: signal,
          });
          await follow(poller, "deployment-create");
          await update({ operation: null });
          continue;
        }
        const runs = existing.properties?.model?.name;
        if (runs !== undefined && runs !== managed.model) {
          throw new ProvisioningFailure({
            code: "DeploymentConflict",
            message: `The deployment '${name}' in the account '${accountName}' runs ${runs}, not ${managed.model}.`,
            status: null,
          });
        }
        const provisioningState = existing.properties?.provisioningState;
        if (provisioningState === "Succeeded") return name;
        if (provisioningState === "Failed" || provisioningState === "Canceled" || provisioningState === "Deleting") {
          throw new ProvisioningFailure({
            code: "DeploymentNotUsable",
            message: `The deployment '${name}' in the account '${accountName}' is in the state '${provisioningState}'.`,
            status: null,
          });
        }
        await sleep(pollIntervalMs, signal);
      }
    }

    try {
      await update(state, { status: "provisioning", statusReason: "Provisioning on Azure has started." });
      const endpoint =
        state.phase === "deployment"
          ? await ensureAccount() // the account is known: this reads its endpoint
          : await withAccountLock(`${subscriptionId}/${resourceGroup}/${region}`, ensureAccount);
      const accountName = state.accountName!;
      const deploymentName = await ensureDeployment(accountName);
      let secrets: Record<string, string> | undefined;
      if (dataPlaneAuth === "api-key") {
        const keys = await client.accounts.listKeys(resourceGroup, accountName, { abortSignal: signal });
        if (keys.key1 === undefined) {
          throw new ProvisioningFailure({ code: "NoKeys", message: `The account '${accountName}' lists no keys.`, status: null });
        }
        secrets = { apiKey: keys.key1 };
      }
      if (signal.aborted) throw closedError();
      const parsedEndpoint = parseAzureEndpoint(endpoint);
      if (typeof parsedEndpoint === "string") {
        throw new ProvisioningFailure({ code: "BadEndpoint", message: `The account's endpoint '${endpoint}' ${parsedEndpoint}.`, status: null });
      }
      const deployment: AzureDeploymentSettings = { name: deploymentName, model: managed.model };
      return await save(providerId, (latest) => {
        const stored = (latest.settings.provisioning as AzureProvisioningState | undefined) ?? state;
        return {
          settings: {
            ...latest.settings,
            endpoint: formatAzureEndpoint(parsedEndpoint),
            apiShape: options.apiShape ?? "deployments",
            ...(options.apiVersion === undefined ? {} : { apiVersion: options.apiVersion }),
            auth: dataPlaneAuth,
            deployments: [deployment],
            provisioning: { ...stored, phase: "ready", operation: null, error: null, updatedAt: clock.now() },
          },
          status: "provisioned",
          statusReason: null,
          ...(secrets === undefined ? {} : { secrets }),
        };
      });
    } catch (error) {
      return fail(providerId, error, signal, state);
    }
  }

  /** Records Azure's refusal as status `failed`; rethrows what is not Azure's (closed, catalog). */
  async function fail(providerId: string, error: unknown, signal: AbortSignal, state: AzureProvisioningState | null): Promise<ProviderRecord> {
    if (signal.aborted) throw closedError();
    if (GatewayError.is(error)) throw error;
    const failure = error instanceof ProvisioningFailure ? error.failure : describeArmFailure(error);
    return save(providerId, (latest) => {
      const stored = (latest.settings.provisioning as AzureProvisioningState | undefined) ?? state;
      return {
        ...(stored === null
          ? {}
          : {
              settings: {
                ...latest.settings,
                provisioning: { ...stored, phase: "failed", operation: null, error: { code: failure.code, message: failure.message }, updatedAt: clock.now() },
              },
            }),
        status: "failed",
        statusReason: formatArmFailure(failure),
      };
    });
  }

  async function attachByResourceId(record: ProviderRecord, settings: AzureOpenAISettings, signal: AbortSignal): Promise<ProviderRecord> {
    const account = parseAccountResourceId(settings.resourceId!);
    const client = arm(account.subscriptionId);
    try {
      const found = await readAzureAccount({ client, account, signal });
      const endpointUrl = settings.endpoint ?? found.endpoint;
      const parsedEndpoint = endpointUrl === null ? "is missing" : parseAzureEndpoint(endpointUrl);
      if (typeof parsedEndpoint === "string") {
        throw new ProvisioningFailure({ code: "BadEndpoint", message: `The account's endpoint ${parsedEndpoint}.`, status: null });
      }
      const endpoint = formatAzureEndpoint(parsedEndpoint);
      let secrets: Record<string, string> | undefined;
      if (settings.auth === "api-key" && !record.secretNames.includes("apiKey")) {
        const keys = await client.accounts.listKeys(account.resourceGroup, account.accountName, { abortSignal: signal });
        if (keys.key1 !== undefined) secrets = { apiKey: keys.key1 };
      }
      if (signal.aborted) throw closedError();
      return await save(record.id, (latest) => {
        const current = parseAzureSettings(latest.settings);
        // Entries for this account are replaced by what ARM lists (keeping their options);
        // entries naming another endpoint stay as they are.
        const own = (entry: AzureDeploymentSettings) => entry.endpoint === undefined || entry.endpoint.replace(/\/+$/, "") === endpoint;
        const previous = new Map(current.deployments.filter(own).map((entry) => [entry.name, entry]));
        const discovered = found.deployments
          .filter((deployment) => deployment.provisioningState === null || deployment.provisioningState === "Succeeded")
          .map((deployment): AzureDeploymentSettings => ({ ...previous.get(deployment.name), name: deployment.name, model: deployment.model }));
        return {
          settings: { ...current, endpoint, deployments: [...discovered, ...current.deployments.filter((entry) => !own(entry))] },
          status: "provisioned",
          statusReason: null,
          ...(secrets === undefined ? {} : { secrets }),
        };
      });
    } catch (error) {
      return fail(record.id, error, signal, null);
    }
  }

  // ---- deletion ----------------------------------------------------------------------------

  async function deprovisionJob(providerId: string, signal: AbortSignal): Promise<boolean> {
    const record = await catalog.get(providerId);
    if (record === null) return false;
    let settings: AzureOpenAISettings;
    try {
      settings = parseAzureSettings(record.settings);
    } catch {
      // Settings this adapter cannot read name nothing it could tear down.
      return catalog.delete(providerId);
    }
    const initial = settings.provisioning;
    if (settings.managed === undefined || initial === undefined) return catalog.delete(providerId);

    const written = await save(providerId, (latest) => {
      const stored = (latest.settings.provisioning as AzureProvisioningState | undefined) ?? initial;
      return {
        settings: { ...latest.settings, provisioning: { ...stored, phase: "deleting", operation: null, updatedAt: clock.now() } },
        statusReason: "Deleting the provider's Azure resources.",
      };
    });
    const state = written.settings.provisioning as AzureProvisioningState;
    const client = arm(state.subscriptionId);
    const { resourceGroup, accountName, deploymentName } = state;
    const lro = { updateIntervalInMs: pollIntervalMs, abortSignal: signal };
    try {
      if (accountName !== null && deploymentName !== null) {
        await ignoreNotFound(client.deployments.beginDeleteAndWait(resourceGroup, accountName, deploymentName, lro));
      }
      if (accountName !== null && (await accountDeletable(providerId, client, state, signal))) {
        await ignoreNotFound(client.accounts.beginDeleteAndWait(resourceGroup, accountName, lro));
      }
    } catch (error) {
      if (signal.aborted) throw closedError();
      const failure = error instanceof ProvisioningFailure ? error.failure : describeArmFailure(error);
      await save(providerId, (latest) => {
        const stored = (latest.settings.provisioning as AzureProvisioningState | undefined) ?? state;
        return {
          settings: {
            ...latest.settings,
            provisioning: { ...stored, error: { code: failure.code, message: failure.message }, updatedAt: clock.now() },
          },
          statusReason: `Deleting the Azure resources failed: ${formatArmFailure(failure)}`,
        };
      });
      throw new GatewayError("upstream_error", `Azure refused to delete the provider's resources: ${formatArmFailure(failure)}`, {
        cause: error,
      });
    }
    if (signal.aborted) throw closedError();
    await catalog.delete(providerId);
    return true;
  }

  /**
   * The account goes with the provider only when Sluice made it (this provider's flag, or the
   * `managed-by: sluice` tag), no other provider record uses it, and no deployment is left in it.
   */
  async function accountDeletable(
    providerId: string,
    client: CognitiveServicesManagementClient,
    state: AzureProvisioningState,
    signal: AbortSignal,
  ): Promise<boolean> {
    const { resourceGroup, accountName } = state;
    let account: Account;
    try {
      account = await client.accounts.get(resourceGroup, accountName!, { abortSignal: signal });
    } catch (error) {
      if (isArmNotFound(error)) return false;
      throw error;
    }
    if (!state.accountCreated && account.tags?.[managedByTag] !== "sluice") return false;
    for (const other of await catalog.list({ kind: "azure-openai" })) {
      if (other.id === providerId) continue;
      const stored = other.settings.provisioning as AzureProvisioningState | undefined;
      if (stored?.accountName === accountName && stored.resourceGroup === resourceGroup && stored.subscriptionId === state.subscriptionId) {
        return false;
      }
      const resourceId = other.settings.resourceId;
      if (typeof resourceId === "string") {
        try {
          const ref = parseAccountResourceId(resourceId);
          if (ref.accountName === accountName && ref.resourceGroup === resourceGroup && ref.subscriptionId === state.subscriptionId) return false;
        } catch {
          // Not a resource id: it names no account.
        }
      }
    }
    for await (const _deployment of client.deployments.list(resourceGroup, accountName!, { abortSignal: signal })) return false;
    return true;
  }

  function provision(provider: ProviderRecord | string): Promise<ProviderRecord> {
    const providerId = typeof provider === "string" ? provider : provider.id;
    return start(providerId, "provision", (signal) => provisionJob(providerId, signal));
  }

  function deprovision(provider: ProviderRecord | string): Promise<boolean> {
    const providerId = typeof provider === "string" ? provider : provider.id;
    return start(providerId, "deprovision", (signal) => deprovisionJob(providerId, signal));
  }

  return {
    provision,
    deprovision,

    async resumeAll() {
      const summary: AzureResumeSummary = { provisioned: [], failed: [], deleted: [], errors: [] };
      const work: Array<Promise<void>> = [];
      for (const record of await catalog.list({ kind: "azure-openai" })) {
        let settings: AzureOpenAISettings;
        try {
          settings = parseAzureSettings(record.settings);
        } catch {
          continue;
        }
        const providerId = record.id;
        const failed = (error: unknown): void => {
          summary.errors.push({ providerId, error: GatewayError.from(error) });
        };
        if (settings.provisioning?.phase === "deleting") {
          work.push(
            deprovision(providerId).then(() => {
              summary.deleted.push(providerId);
            }, failed),
          );
        } else if (record.status === "provisioning") {
          work.push(
            provision(providerId).then((result) => {
              if (result.status === "provisioned") summary.provisioned.push(providerId);
              else summary.failed.push(providerId);
            }, failed),
          );
        }
      }
      await Promise.all(work);
      return summary;
    },

    async close() {
      closed = true;
      const running = [...jobs.values()];
      await Promise.all(running.map((job) => settle(job, true)));
    },
  };
}

async function ignoreNotFound(operation: Promise<unknown>): Promise<void> {
  try {
    await operation;
  } catch (error) {
    if (!isArmNotFound(error)) throw error;
  }
}

function normalizeRegion(location: string | undefined): string {
  return (location ?? "").replaceAll(" ", "").toLowerCase();
}

/** `sluice-eastus2-k3x9q2`: the prefix, the region, and 6 random characters (it is a global DNS name). */
function newAccountName(prefix: string, region: string): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  let suffix = "";
  for (let index = 0; index < 6; index++) suffix += alphabet[randomInt(alphabet.length)];
  const head = `${prefix}-${region}`.replace(/[^a-z0-9-]/g, "").slice(0, 56);
  return `${head}-${suffix}`;
}
