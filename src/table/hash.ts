// Sticky hashing: bucket = hash(seed, key) mod 10000, the same in every
// process and on every machine (no randomised hash seeds, no shared state).
//
//   FNV-1a (32 bit) over the UTF-16 code units of seed, then of key, then
//   murmur3's fmix32 finaliser so that keys differing in their last
//   character still land far apart, then mod 10000.

/** Buckets per split; weights resolve to 1/10000. */
export const BUCKETS = 10000;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a state after absorbing `seed`; stored at compile time. */
export function hashSeed(seed: string): number {
  return absorb(FNV_OFFSET, seed);
}

function absorb(state: number, text: string): number {
  let h = state;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, FNV_PRIME);
  }
  return h;
}

/**
 * HOT PATH. The sticky bucket in [0, 10000) of `key` under a compiled seed.
 *
 * The constants are literals, not FNV_PRIME and BUCKETS: V8 reads a
 * module-level binding at run time, and `% BUCKETS` then compiles to a
 * hardware division; `% 10000` is a multiply and shift. That alone is
 * 15-20 ns of a ~45 ns hash (bench/router.ts).
 */
export function bucketOf(seedState: number, key: string): number {
  // A separator so that (seed "ab", key "c") and (seed "a", key "bc") differ.
  let h = Math.imul(seedState ^ 0xff, 0x01000193);
  // absorb(), written out: this loop is most of a sticky decision's cost.
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) % 10000;
}
