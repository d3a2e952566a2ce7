// Owns: sending a decided request upstream through undici pools that outlive reloads; timeouts,
// headers, streaming, upgrades; maps failures to 502/504. Must not touch: version choice, config, state.

export { forwardRequest, sendError, nextUpstream, CLIENT_CLOSED_STATUS } from './forward.ts';
export type { ExchangeObserver } from './forward.ts';
export { forwardUpgrade, rejectUpgrade } from './upgrade.ts';
export { UpstreamPools } from './pools.ts';
export type { PooledUpstream, PoolSettings } from './pools.ts';
export { classifyUpstreamError } from './upstream-errors.ts';
export type { UpstreamFailure, UpstreamFailureKind } from './upstream-errors.ts';
export { VERSION_HEADER, buildUpstreamHeaders, buildClientHeaders } from './headers.ts';
