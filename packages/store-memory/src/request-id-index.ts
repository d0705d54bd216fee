const initialRows = 1_024;

/**
 * The charge log's request ids, numbered in the order added, and found by id, all in typed
 * arrays: every id's UTF-16 code units in one growing arena, and an open-addressing hash table of
 * row numbers.
 *
 * A Map from id to row kept one string and one table entry per charge on the collected heap for
 * as long as the process ran: about 100 B per request, which every major collection marked again,
 * and which grew without bound on a long-running gateway. Here an id costs its code units, a hash
 * and two table slots (about 60 B for a gateway's 24-character id), none of it an object.
 */
export class RequestIdIndex {
  #units = new Uint16Array(initialRows * 32);
  #unitsLength = 0;
  /** Where row `r`'s id starts in the arena; it ends where row `r + 1`'s starts. */
  #starts = new Uint32Array(initialRows + 1);
  #hashes = new Int32Array(initialRows);
  #count = 0;
  /** Row + 1 per slot, 0 for an empty slot; at most half full, so a probe ends soon. */
  #slots = new Int32Array(initialRows * 2);

  get size(): number {
    return this.#count;
  }

  /** The row of `id`, or -1. */
  get(id: string): number {
    return this.#find(id, hashOf(id));
  }

  /** Adds `id` as the next row and returns that row, or -1 (adding nothing) when `id` is already in. */
  add(id: string): number {
    const hash = hashOf(id);
    if (this.#find(id, hash) !== -1) return -1;
    const row = this.#count;
    if (row + 1 === this.#starts.length) this.#growRows();
    if (this.#unitsLength + id.length > this.#units.length) this.#growUnits(id.length);
    const units = this.#units;
    let at = this.#unitsLength;
    for (let index = 0; index < id.length; index++) units[at++] = id.charCodeAt(index);
    this.#unitsLength = at;
    this.#starts[row + 1] = at;
    this.#hashes[row] = hash;
    this.#count = row + 1;
    if (this.#count * 2 > this.#slots.length) this.#rehash(this.#slots.length * 2);
    else this.#place(row, hash);
    return row;
  }

  /** The id of `row` (which must exist), as a new string. */
  idOf(row: number): string {
    return String.fromCharCode(...this.#units.subarray(this.#starts[row]!, this.#starts[row + 1]!));
  }

  #find(id: string, hash: number): number {
    const slots = this.#slots;
    const mask = slots.length - 1;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const entry = slots[slot]!;
      if (entry === 0) return -1;
      const row = entry - 1;
      if (this.#hashes[row] === hash && this.#spells(row, id)) return row;
    }
  }

  #spells(row: number, id: string): boolean {
    const start = this.#starts[row]!;
    if (this.#starts[row + 1]! - start !== id.length) return false;
    const units = this.#units;
    for (let index = 0; index < id.length; index++) {
      if (units[start + index] !== id.charCodeAt(index)) return false;
    }
    return true;
  }

  #place(row: number, hash: number): void {
    const slots = this.#slots;
    const mask = slots.length - 1;
    let slot = hash & mask;
    while (slots[slot] !== 0) slot = (slot + 1) & mask;
    slots[slot] = row + 1;
  }

  #rehash(size: number): void {
    this.#slots = new Int32Array(size);
    for (let row = 0; row < this.#count; row++) this.#place(row, this.#hashes[row]!);
  }

  #growRows(): void {
    const rows = (this.#starts.length - 1) * 2;
    const starts = new Uint32Array(rows + 1);
    starts.set(this.#starts);
    this.#starts = starts;
    const hashes = new Int32Array(rows);
    hashes.set(this.#hashes);
    this.#hashes = hashes;
  }

  #growUnits(needed: number): void {
    const units = new Uint16Array(Math.max(this.#units.length * 2, this.#unitsLength + needed));
    units.set(this.#units.subarray(0, this.#unitsLength));
    this.#units = units;
  }
}

/** FNV-1a over the id's UTF-16 code units: cheap, and spreads ids that share a prefix. */
function hashOf(id: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < id.length; index++) {
    hash ^= id.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash;
}
