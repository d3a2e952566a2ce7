// Where runtime state lives between restarts. A store loads the whole
// document once at start and saves the whole document after each command;
// a save either lands completely or not at all.

import type { PersistedState } from './records.ts';

/** A durable home for the state document. */
export interface StateStore {
  /** What the store is, for logs and /readyz (e.g. `file /var/lib/veer/state.json`). */
  readonly description: string;
  /**
   * Reads the document; null when there is none yet. Throws StateLoadError
   * when it exists but cannot be read or trusted: the caller must stop, not
   * start over and overwrite it.
   */
  load(): Promise<PersistedState | null>;
  /** Writes the document atomically; throws when it could not be made durable. */
  save(state: PersistedState): Promise<void>;
  /** Whether a save could succeed now (for /readyz); the error when not. */
  check(): Promise<{ ok: true } | { ok: false; error: string }>;
}

/** The state document exists but cannot be read (`unreadable`) or is not valid (`corrupt`). */
export class StateLoadError extends Error {
  readonly kind: 'corrupt' | 'unreadable';
  readonly location: string;
  constructor(kind: 'corrupt' | 'unreadable', location: string, detail: string, options?: { cause?: unknown }) {
    super(`state file ${location} is ${kind === 'corrupt' ? 'corrupt' : 'unreadable'}: ${detail}`, options);
    this.name = 'StateLoadError';
    this.kind = kind;
    this.location = location;
  }
}
