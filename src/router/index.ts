// Owns: THE HOT PATH, route(request, table) -> version | null, and explaining that choice.
// Must not touch: I/O, logging, timers, metrics, config parsing; no await, no allocation beyond the decision.

export { routeRequest, findService, pickVersion, matchRuleIndex, stickyBucketOf } from './route.ts';
export type { RandomSource } from './route.ts';
export { explainChoice, describeRequest } from './explain.ts';
export type { ExplainInput, Explanation } from './explain.ts';
