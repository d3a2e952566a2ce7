// PrefixTable finds a prefix by hashing only the positions where its
// prefixes differ, then compares the candidate: it must answer exactly what
// a scan with startsWith answers, for urls that share those positions with a
// prefix and differ elsewhere too.

import t from 'tap';
import { PrefixTable } from '../../src/table/prefix-table.ts';
import { mulberry32 } from '../helpers/prng.ts';

t.test('finds the prefix a url starts with, as a scan does', async (t) => {
  const random = mulberry32(0x9ef1);
  const alphabet = ['/', 'a', 'b', 'c', '1', 'é', '\u{1F600}'];
  const word = (length: number) => Array.from({ length }, () => alphabet[Math.floor(random() * alphabet.length)]!).join('').slice(0, length);
  let found = 0;
  let checked = 0;
  for (let round = 0; round < 300; round++) {
    const length = 1 + Math.floor(random() * 6);
    const count = 1 + Math.floor(random() * 40);
    const prefixes = new Map<string, number>();
    for (let i = 0; i < count; i++) {
      const prefix = `/${word(length - 1)}`.slice(0, length);
      if (prefix.length === length && !prefixes.has(prefix)) prefixes.set(prefix, prefixes.size);
    }
    if (prefixes.size === 0) continue;
    const table = new PrefixTable(prefixes);
    t.equal(table.length, length);
    const known = [...prefixes.keys()];
    for (let i = 0; i < 60; i++) {
      // Half the urls start with a known prefix, some with one character changed, the rest at random.
      const base = known[Math.floor(random() * known.length)]!;
      let url = random() < 0.5 ? base : `/${word(length - 1)}`;
      if (random() < 0.3) {
        const at = Math.floor(random() * url.length);
        url = url.slice(0, at) + alphabet[Math.floor(random() * alphabet.length)]! + url.slice(at + 1);
      }
      url += random() < 0.5 ? '' : `/${word(3)}`;
      if (url.length < length) continue;
      const expected = known.find((p) => url.startsWith(p));
      const got = table.find(url);
      if (got !== (expected === undefined ? undefined : prefixes.get(expected))) {
        t.fail(`${JSON.stringify(known)} on ${JSON.stringify(url)}: ${got}, a scan says ${expected}`);
        return;
      }
      checked++;
      if (got !== undefined) found++;
    }
  }
  t.ok(found > checked / 4 && found < checked, `${found} of ${checked} urls start with a prefix`);
});

t.test('prefixes of different lengths are refused', async (t) => {
  t.throws(() => new PrefixTable(new Map([['/a', 0], ['/ab', 1]])));
});
