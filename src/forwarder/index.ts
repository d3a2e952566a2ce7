// Owns: sending a decided request upstream: endpoint sets and undici pools that outlive reloads (keyed by the table's
// upstream specs), timeouts, headers, streaming, upgrades; maps failures to 502/504.
// Must not touch: version choice, config files, state; it reads only the compiled table it is handed.

export { forwardRequest, sendError, CLIENT_CLOSED_STATUS } from './forward.ts';
export type { ExchangeObserver, FinishedExchange, StartingExchange } from './forward.ts';
export { forwardTunnel, rejectUpgrade, upgradeTunnelClient } from './upgrade.ts';
export type { TunnelClient } from './upgrade.ts';
export { extendedConnectTunnelClient, websocketAccept } from './extended-connect.ts';
export { whenExchangesEnd } from './client-connections.ts';
export { UpstreamRegistry } from './upstream-registry.ts';
export type { PoolSettings } from './upstream-registry.ts';
export { RoundRobinEndpoints } from './endpoints.ts';
export type { Endpoint, EndpointSet } from './endpoints.ts';
export { classifyUpstreamError } from './upstream-errors.ts';
export type { UpstreamFailure, UpstreamFailureKind } from './upstream-errors.ts';
export { VERSION_HEADER, REQUEST_ID_HEADER, buildUpstreamHeaders, buildClientHeaders } from './headers.ts';
