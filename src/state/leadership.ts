// Whether this replica drives rollouts and shifts. With the file store there
// is one replica and it always does; a shared store elects one (etcd-leader.ts).

import type { Leadership } from './store.ts';

/** The replica's leadership flag and its listeners. */
export class LeadershipFlag implements Leadership {
  #leader = false;
  readonly #listeners: ((leader: boolean) => void)[] = [];

  isLeader(): boolean {
    return this.#leader;
  }

  onLeadership(listener: (leader: boolean) => void): void {
    this.#listeners.push(listener);
  }

  /** Sets the flag; listeners hear only real changes. */
  set(leader: boolean): void {
    if (leader === this.#leader) return;
    this.#leader = leader;
    for (const listener of this.#listeners) listener(leader);
  }
}

/** A leadership that never changes: the single replica of a file store always leads. */
export const ALWAYS_LEADER: Leadership = {
  isLeader: () => true,
  onLeadership: () => {},
};
