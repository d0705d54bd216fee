import { EventEmitter } from "eventemitter3";
import type { Charge, Allocation } from "../budget/budget-ledger.js";
import type { AiKey } from "../keys/key-store.js";
import type { Grant } from "../permissions/permission-store.js";
import type { ProviderRecord, ProviderStatus } from "../provider/provider-record.js";

export interface RequestStartEvent {
  requestId: string;
  /** `chat.completions`, `embeddings`, `completions` or `models`. */
  operation: string;
  userId: string | null;
  keyId: string | null;
  model: string | null;
  stream: boolean;
  at: number;
}

export interface RequestEndEvent {
  requestId: string;
  status: number;
  /** The error code when the request failed, else null. */
  errorCode: string | null;
  /** Why a stream ended: `completed`, `client-disconnect`, `upstream-error`, `timeout`. */
  outcome: string;
  durationMs: number;
  at: number;
}

export interface BudgetRefuseEvent {
  requestId: string;
  userId: string;
  keyId: string | null;
  allocationId: string;
  reason: "allocation_exhausted" | "key_limit_exhausted";
  amount: number;
  at: number;
}

export interface ProviderStatusChangeEvent {
  provider: ProviderRecord;
  previous: ProviderStatus;
}

export interface GrantChangeEvent {
  change: "granted" | "revoked";
  grant: Grant;
  actor: string;
}

export interface AllocationChangeEvent {
  change: "created" | "updated";
  allocation: Allocation;
}

export interface ListenerErrorEvent {
  event: string;
  error: unknown;
}

/**
 * Everything Sluice reports. Names are noun-verb. Library code never logs: hosts subscribe here
 * for audit trails, metrics and logs. The component that makes a change emits it (a store for its
 * mutations, the gateway for requests), on the bus it was given.
 */
export interface SluiceEvents {
  "request-start": [RequestStartEvent];
  "request-end": [RequestEndEvent];
  "usage-charge": [Charge];
  "budget-refuse": [BudgetRefuseEvent];
  "provider-create": [ProviderRecord];
  "provider-update": [ProviderRecord];
  "provider-delete": [ProviderRecord];
  "provider-status-change": [ProviderStatusChangeEvent];
  "key-create": [AiKey];
  "key-revoke": [AiKey];
  "grant-change": [GrantChangeEvent];
  "allocation-change": [AllocationChangeEvent];
  /** A listener threw; Sluice carried on. */
  "listener-error": [ListenerErrorEvent];
}

export type SluiceEventName = keyof SluiceEvents;

/** The typed emitter hosts subscribe to. */
export class SluiceEventBus extends EventEmitter<SluiceEvents> {
  /**
   * Emits on behalf of library code. A throwing listener must not fail the request or the store
   * write that caused the event, so its error is caught and re-emitted as `listener-error`.
   */
  publish<Name extends SluiceEventName>(name: Name, ...args: SluiceEvents[Name]): void {
    try {
      (this.emit as (event: Name, ...rest: SluiceEvents[Name]) => boolean)(name, ...args);
    } catch (error) {
      if (name === "listener-error") return;
      try {
        this.emit("listener-error", { event: name, error });
      } catch {
        // A throwing listener-error listener has nowhere left to report to.
      }
    }
  }
}

export function createEventBus(): SluiceEventBus {
  return new SluiceEventBus();
}
