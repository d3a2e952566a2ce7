// undici's request API for the rollout's own calls (Prometheus queries,
// hooks), loaded on first use. Its package index also brings fetch,
// WebSocket, the caches and the mocks (110 modules, several MB); a veer
// whose rollouts query nothing and call no hook never loads it (the
// forwarder takes only undici's Pool, by file: forwarder/undici-core.ts).

type Undici = typeof import('undici');

let undici: Promise<Undici> | undefined;

/** undici's index, imported once. */
export function loadUndici(): Promise<Undici> {
  return (undici ??= import('undici'));
}
