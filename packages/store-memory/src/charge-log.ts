import type { Charge, MicroDollars } from "@sluice/core";
import { RequestIdIndex } from "./request-id-index.js";

const initialCapacity = 1_024;
/** Marks a charge without a key in the key column. */
const noKey = -1;

/**
 * Every charge the memory ledger has made, in the order made, held in columns rather than as one
 * object per charge.
 *
 * The ledger keeps its charges for as long as the process runs (usage reports cover any range),
 * and a long-lived object per request made every garbage collection mark a little more: a
 * gateway's CPU per request grew with the number of requests it had served (about 10 µs more
 * per stream after 100,000 streams, `npm run bench`'s focus cell). Numbers live in typed arrays,
 * which the collector never walks; ids (allocation, user, key, provider, model) are stored once
 * each and referred to by index; request ids, the key of `getCharge`, live in a `RequestIdIndex`.
 * Nothing of a charge stays on the collected heap.
 */
export class ChargeLog {
  #length = 0;
  #at = new Float64Array(initialCapacity);
  #cost = new Float64Array(initialCapacity);
  #inputTokens = new Float64Array(initialCapacity);
  #outputTokens = new Float64Array(initialCapacity);
  #allocation = new Int32Array(initialCapacity);
  #user = new Int32Array(initialCapacity);
  #key = new Int32Array(initialCapacity);
  #provider = new Int32Array(initialCapacity);
  #model = new Int32Array(initialCapacity);
  /** Request id <-> row. */
  readonly #requestIds = new RequestIdIndex();
  readonly #texts: string[] = [];
  readonly #textIndexes = new Map<string, number>();
  /** Allocation text index -> its rows, so a period's sum does not scan every allocation's charges. */
  readonly #allocationRows = new Map<number, RowList>();

  get length(): number {
    return this.#length;
  }

  has(requestId: string): boolean {
    return this.#requestIds.get(requestId) !== -1;
  }

  /** The charge made for `requestId`, as a new object, or undefined. */
  get(requestId: string): Charge | undefined {
    const row = this.#requestIds.get(requestId);
    return row === -1 ? undefined : this.#charge(requestId, row);
  }

  /** Records a charge; its request id must not have one yet (the ledger checks first). */
  append(charge: Charge): void {
    if (this.#length === this.#at.length) this.#grow();
    const row = this.#requestIds.add(charge.requestId);
    if (row === -1) throw new Error(`The request '${charge.requestId}' is already in the log.`);
    const allocation = this.#textIndex(charge.allocationId);
    this.#at[row] = charge.at;
    this.#cost[row] = charge.cost;
    this.#inputTokens[row] = charge.inputTokens;
    this.#outputTokens[row] = charge.outputTokens;
    this.#allocation[row] = allocation;
    this.#user[row] = this.#textIndex(charge.userId);
    this.#key[row] = charge.keyId === null ? noKey : this.#textIndex(charge.keyId);
    this.#provider[row] = this.#textIndex(charge.providerId);
    this.#model[row] = this.#textIndex(charge.model);
    let rows = this.#allocationRows.get(allocation);
    if (rows === undefined) this.#allocationRows.set(allocation, (rows = new RowList()));
    rows.push(row);
    this.#length = row + 1;
  }

  /** What an allocation's charges made at or after `from` and before `to` cost. */
  costOf(allocationId: string, from: number, to: number): MicroDollars {
    const index = this.#textIndexes.get(allocationId);
    const rows = index === undefined ? undefined : this.#allocationRows.get(index);
    if (rows === undefined) return 0;
    let spent = 0;
    for (let position = 0; position < rows.length; position++) {
      const row = rows.at(position);
      const at = this.#at[row]!;
      if (at >= from && at < to) spent += this.#cost[row]!;
    }
    return spent;
  }

  /**
   * The charges made at or after `from` and before `to` (every charge by default), in the order
   * made, as new objects: for reports and inspection, not the request path. Rows outside the range
   * are passed over on the time column, without building their objects.
   */
  *charges(from = -Infinity, to = Infinity): IterableIterator<Charge> {
    const at = this.#at;
    for (let row = 0; row < this.#length; row++) {
      const madeAt = at[row]!;
      if (madeAt >= from && madeAt < to) yield this.#charge(this.#requestIds.idOf(row), row);
    }
  }

  /**
   * The same charges as `charges`, without their request ids, which a usage report never reads
   * and which would each be rebuilt as a string from the id index.
   */
  *unnamedCharges(from = -Infinity, to = Infinity): IterableIterator<Omit<Charge, "requestId">> {
    const at = this.#at;
    for (let row = 0; row < this.#length; row++) {
      const madeAt = at[row]!;
      if (madeAt >= from && madeAt < to) yield this.#fields(row);
    }
  }

  #charge(requestId: string, row: number): Charge {
    return { requestId, ...this.#fields(row) };
  }

  #fields(row: number): Omit<Charge, "requestId"> {
    const key = this.#key[row]!;
    return {
      allocationId: this.#texts[this.#allocation[row]!]!,
      userId: this.#texts[this.#user[row]!]!,
      keyId: key === noKey ? null : this.#texts[key]!,
      providerId: this.#texts[this.#provider[row]!]!,
      model: this.#texts[this.#model[row]!]!,
      inputTokens: this.#inputTokens[row]!,
      outputTokens: this.#outputTokens[row]!,
      cost: this.#cost[row]!,
      at: this.#at[row]!,
    };
  }

  #textIndex(text: string): number {
    let index = this.#textIndexes.get(text);
    if (index === undefined) {
      index = this.#texts.length;
      this.#texts.push(text);
      this.#textIndexes.set(text, index);
    }
    return index;
  }

  #grow(): void {
    const capacity = this.#at.length * 2;
    this.#at = grown(this.#at, new Float64Array(capacity));
    this.#cost = grown(this.#cost, new Float64Array(capacity));
    this.#inputTokens = grown(this.#inputTokens, new Float64Array(capacity));
    this.#outputTokens = grown(this.#outputTokens, new Float64Array(capacity));
    this.#allocation = grown(this.#allocation, new Int32Array(capacity));
    this.#user = grown(this.#user, new Int32Array(capacity));
    this.#key = grown(this.#key, new Int32Array(capacity));
    this.#provider = grown(this.#provider, new Int32Array(capacity));
    this.#model = grown(this.#model, new Int32Array(capacity));
  }
}

function grown<Column extends Float64Array | Int32Array>(from: Column, to: Column): Column {
  to.set(from);
  return to;
}

/** A growable list of row numbers in a typed array. */
class RowList {
  #rows = new Int32Array(16);
  length = 0;

  push(row: number): void {
    if (this.length === this.#rows.length) {
      const rows = new Int32Array(this.#rows.length * 2);
      rows.set(this.#rows);
      this.#rows = rows;
    }
    this.#rows[this.length++] = row;
  }

  at(position: number): number {
    return this.#rows[position]!;
  }
}
