// A worker thread that parses a large config off the main thread, so a
// reload of 10 000 services does not stall the requests in flight. It sends
// back JSON text, one string per service, so the main thread parses only the
// services that changed (see source.ts) and the rest keep their objects,
// and with them their compiled routes.

import { parentPort, workerData } from 'node:worker_threads';
import { parseConfigText } from './load.ts';
import type { ConfigIssue } from './load.ts';

/** What the worker answers. */
export type ReadAnswer =
  | { readonly ok: true; readonly top: string; readonly services: readonly string[] }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] };

const { text, env } = workerData as { text: string; env: NodeJS.ProcessEnv };
const loaded = parseConfigText(text, env);
let answer: ReadAnswer;
if (loaded.ok) {
  const { services, ...top } = loaded.config;
  answer = { ok: true, top: JSON.stringify(top), services: services.map((s) => JSON.stringify(s)) };
} else {
  answer = { ok: false, issues: loaded.issues };
}
parentPort!.postMessage(answer);
