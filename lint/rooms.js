// The rooms of src/ and which may import which: the one table that the lint
// rule below enforces (STYLE.md, "Rooms"). Each room imports another only
// through its index.ts.
//
//   value imports   only along ALLOWED (calls, classes, constants)
//   `import type`   also from the rooms those reach (their types flow with
//                   what a room is handed: the router's table, state's services)
//   log/, errors.ts from anywhere; main.ts and main-worker.ts wire every room

import { dirname, relative, resolve, sep } from 'node:path';

/** Which rooms each room may import values from (besides log/ and errors.ts). */
export const ALLOWED = {
  config: [],
  table: ['config'],
  router: ['table'],
  forwarder: ['table'],
  metrics: [],
  dataplane: ['router', 'forwarder', 'metrics'],
  state: ['table', 'config'],
  rollout: ['state', 'metrics'],
  admin: ['state', 'rollout', 'metrics'],
  cluster: ['dataplane', 'state', 'metrics'],
  cli: ['config', 'main.ts'],
  log: [],
};

/** Rooms that may import only types from some others: the CLI speaks to veer through the admin API's answers. */
export const TYPES_ONLY = { cli: ['admin'] };

/** Importable from every room. */
const SHARED = ['log', 'errors.ts'];
/** Files at the top of src/ that wire the rooms together. */
const WIRING = ['main.ts', 'main-worker.ts'];

export const ROOMS = Object.keys(ALLOWED);

/** Every room reachable from `room` along ALLOWED (itself excluded). */
export function reachableFrom(room) {
  const seen = new Set();
  const stack = [...(ALLOWED[room] ?? [])];
  while (stack.length > 0) {
    const next = stack.pop();
    if (seen.has(next)) continue;
    seen.add(next);
    stack.push(...(ALLOWED[next] ?? []));
  }
  return seen;
}

/** `src/<room>/...` -> room; `src/x.ts` -> `x.ts`; outside src -> null. */
function roomOf(srcDir, file) {
  const rel = relative(srcDir, file);
  if (rel.startsWith('..') || rel === '') return null;
  const parts = rel.split(sep);
  return parts.length === 1 ? parts[0] : parts[0];
}

/** Why `from` may not import `specifier` (resolved from `file`), or null when it may. */
export function checkImport(srcDir, file, specifier, typeOnly) {
  if (!specifier.startsWith('.')) return null;
  const from = roomOf(srcDir, file);
  const target = resolve(dirname(file), specifier);
  const to = roomOf(srcDir, target);
  if (from === null || to === null || from === to || WIRING.includes(from)) return null;
  if (SHARED.includes(to)) return to === 'log' && relative(srcDir, target) !== `log${sep}index.ts` ? 'import log/ only through its index.ts' : null;
  if (WIRING.includes(to)) return (ALLOWED[from] ?? []).includes(to) ? null : `src/${from} may not import ${to} (only cli does, for \`serve\` and \`validate\`)`;
  if (relative(srcDir, target) !== `${to}${sep}index.ts`) return `import src/${to} only through its index.ts`;
  if ((ALLOWED[from] ?? []).includes(to)) return null;
  if (typeOnly && ((TYPES_ONLY[from] ?? []).includes(to) || reachableFrom(from).has(to))) return null;
  const values = (ALLOWED[from] ?? []).filter((r) => !WIRING.includes(r));
  const types = [...new Set([...(TYPES_ONLY[from] ?? []), ...reachableFrom(from)])].filter((r) => !values.includes(r) && !WIRING.includes(r));
  return (
    `src/${from} may not import ${typeOnly ? 'types' : 'values'} from src/${to}: ` +
    `values only from ${values.join(', ') || '(no other room)'}` +
    (types.length > 0 ? `, types also from ${types.join(', ')}` : '') +
    ' (STYLE.md, Rooms)'
  );
}

/** True when the statement imports or exports types only. */
function isTypeOnly(node) {
  if (node.importKind === 'type' || node.exportKind === 'type') return true;
  const specifiers = node.specifiers ?? [];
  return specifiers.length > 0 && specifiers.every((s) => s.importKind === 'type' || s.exportKind === 'type');
}

/** The ESLint plugin: `rooms/imports` checks every relative import and re-export under src/. */
export function roomsPlugin(srcDir) {
  return {
    rules: {
      imports: {
        meta: { type: 'problem', docs: { description: 'rooms import each other only as STYLE.md allows' }, schema: [] },
        create(context) {
          const file = context.physicalFilename ?? context.filename;
          const check = (node, source, typeOnly) => {
            if (source === null || source === undefined || typeof source.value !== 'string') return;
            const problem = checkImport(srcDir, file, source.value, typeOnly);
            if (problem !== null) context.report({ node, message: problem });
          };
          const statement = (node) => check(node, node.source, isTypeOnly(node));
          return {
            ImportDeclaration: statement,
            ExportNamedDeclaration: statement,
            ExportAllDeclaration: statement,
            ImportExpression: (node) => check(node, node.source.type === 'Literal' ? node.source : null, false),
          };
        },
      },
    },
  };
}
