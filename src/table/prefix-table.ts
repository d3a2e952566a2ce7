// Path prefixes of one length, found from a request target without cutting
// the prefix out of it: `map.get(url.slice(0, n))` allocates a string and
// hashes all of it on every request. This table hashes only the positions
// where its prefixes differ, and checks the one candidate char by char:
//
//   prefixes /api/r000 ... /api/r199        positions 6 7 8 vary
//   url      /api/r100/items     key = hash('1','0','0') -> /api/r100?
//                                compare url[0, 9) with it -> yes
//
// The hash seed is chosen at compile time so no two prefixes share a key;
// a url that shares one with a prefix fails the comparison.

/** One prefix and what it leads to. */
interface Slot<T> {
  readonly key: number;
  readonly prefix: string;
  readonly value: T;
}

/** Seeds tried before giving up on a collision-free key (never reached with 32-bit hashes in practice). */
const MAX_SEEDS = 64;

/** Keys are kept to 30 bits: V8 stores them as small integers, with no boxing. */
const KEY_MASK = 0x3fffffff;

function keyOf(text: string, positions: Int32Array, seed: number): number {
  let h = seed;
  for (let i = 0; i < positions.length; i++) h = Math.imul(h ^ text.charCodeAt(positions[i]!), 0x01000193);
  return h & KEY_MASK;
}

/** Values by path prefixes that all have the same length; see the top of this file. */
export class PrefixTable<T> {
  /** The length of every prefix in the table. */
  readonly length: number;
  readonly #positions: Int32Array;
  readonly #seed: number;
  /** Open addressing, linear probing: a power-of-two array at most half full; free slots have key -1. Never changed after construction. */
  readonly #slots: readonly Slot<T>[];
  readonly #mask: number;

  /** `entries`: distinct prefixes of one length, each with its value. */
  constructor(entries: ReadonlyMap<string, T>) {
    const prefixes = [...entries.keys()];
    const length = prefixes[0]?.length ?? 0;
    if (prefixes.some((p) => p.length !== length)) throw new RangeError('PrefixTable: prefixes of different lengths');
    this.length = length;
    const positions: number[] = [];
    for (let i = 0; i < length; i++) if (prefixes.some((p) => p.charCodeAt(i) !== prefixes[0]!.charCodeAt(i))) positions.push(i);
    this.#positions = Int32Array.from(positions);
    let seed = 0x811c9dc5 | 0;
    for (let attempt = 0; ; attempt++) {
      const keys = new Set(prefixes.map((p) => keyOf(p, this.#positions, seed)));
      if (keys.size === prefixes.length) break;
      if (attempt === MAX_SEEDS) throw new Error('PrefixTable: no collision-free seed');
      seed = Math.imul(seed ^ (attempt + 1), 0x9e3779b1);
    }
    this.#seed = seed;
    let size = 2;
    while (size < 2 * prefixes.length) size *= 2;
    // Packed, one shape throughout (EMPTY for a free slot): V8 then loads a slot inline; a holey or
    // frozen array of mixed values sends every load through a generic IC call.
    const empty: Slot<T> = { key: -1, prefix: '', value: undefined as T };
    const slots: Slot<T>[] = Array.from({ length: size }, () => empty);
    for (const [prefix, value] of entries) {
      const key = keyOf(prefix, this.#positions, seed);
      let i = key & (size - 1);
      while (slots[i] !== empty) i = (i + 1) & (size - 1);
      slots[i] = { key, prefix, value };
    }
    this.#slots = slots;
    this.#mask = size - 1;
  }

  /** HOT PATH. The value of the prefix that `url` starts with; the caller checks `url.length >= length` first. */
  find(url: string): T | undefined {
    const key = keyOf(url, this.#positions, this.#seed);
    const slots = this.#slots;
    const mask = this.#mask;
    // Keys are distinct, so the slot with this key is the only candidate.
    for (let i = key & mask; ; i = (i + 1) & mask) {
      const slot = slots[i]!;
      if (slot.key !== key) {
        if (slot.key === -1) return undefined;
        continue;
      }
      const prefix = slot.prefix;
      for (let c = 0; c < prefix.length; c++) if (url.charCodeAt(c) !== prefix.charCodeAt(c)) return undefined;
      return slot.value;
    }
  }
}
