// /api/v1/services: list, one service, weights (set, reset) and explain.

import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { VeerError } from '../errors.ts';
import type { RuntimeState } from '../state/index.ts';
import type { CompiledService } from '../table/index.ts';
import { describeService, type EndpointsOf, type RolloutStatusOf } from './api-views.ts';

const ServiceParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 253 }) });
type ServiceParamsT = Static<typeof ServiceParams>;

/** PUT .../weights. Values are checked by state/ (negative, huge, all zero -> invalid_weights). */
export const WeightsBody = Type.Object(
  { weights: Type.Record(Type.String({ minLength: 1, maxLength: 253 }), Type.Number(), { maxProperties: 256 }) },
  { additionalProperties: false },
);

const StringMap = Type.Record(Type.String({ minLength: 1, maxLength: 256 }), Type.String({ maxLength: 8192 }), { maxProperties: 128 });

/** POST .../explain: a request described by parts. */
export const ExplainBody = Type.Object(
  {
    headers: Type.Optional(StringMap),
    cookies: Type.Optional(StringMap),
    query: Type.Optional(StringMap),
    path: Type.Optional(Type.String({ pattern: '^/', maxLength: 8192 })),
    method: Type.Optional(Type.String({ pattern: '^[A-Za-z]+$', maxLength: 16 })),
  },
  { additionalProperties: false },
);

/** A request described by parts, as POST .../explain takes it. */
export type ExplainRequest = Static<typeof ExplainBody>;

/** Which version a described request would get, and why (the router's explanation). */
export type ExplainService = (service: CompiledService, request: ExplainRequest) => object;

/** What the services routes need. */
export interface ServicesRouteOptions {
  readonly runtime: RuntimeState;
  readonly explain: ExplainService;
  readonly rolloutOf: RolloutStatusOf;
  readonly actorOf: (headers: Record<string, unknown>, ip: string) => string;
  /** The endpoint states GET /services/{name} adds; absent without a data plane to ask. */
  readonly endpointsOf?: EndpointsOf;
}

/** Looks a service up in the published table or throws unknown_service. */
export function serviceOrThrow(runtime: RuntimeState, name: string): CompiledService {
  const service = runtime.table.servicesByName.get(name);
  if (service === undefined) throw new VeerError('unknown_service', `no service named ${JSON.stringify(name)} (services: ${runtime.table.services.map((s) => s.name).join(', ')})`);
  return service;
}

/** Registers the services routes on `app` (mounted under /api/v1). */
export async function servicesRoutes(app: FastifyInstance, options: ServicesRouteOptions): Promise<void> {
  const { runtime, rolloutOf, actorOf, explain, endpointsOf } = options;

  app.get('/services', async () => ({ services: runtime.table.services.map((s) => describeService(s, runtime, rolloutOf)) }));

  app.get<{ Params: ServiceParamsT }>('/services/:name', { schema: { params: ServiceParams } }, async (req) => {
    const view = describeService(serviceOrThrow(runtime, req.params.name), runtime, rolloutOf);
    return endpointsOf === undefined ? view : { ...view, endpoints: await endpointsOf(view.name) };
  });

  app.put<{ Params: ServiceParamsT; Body: Static<typeof WeightsBody> }>('/services/:name/weights', { schema: { params: ServiceParams, body: WeightsBody } }, async (req) => {
    const result = await runtime.setWeights(req.params.name, req.body.weights, actorOf(req.headers, req.ip));
    return { service: describeService(serviceOrThrow(runtime, req.params.name), runtime, rolloutOf), change: result.entry };
  });

  app.delete<{ Params: ServiceParamsT }>('/services/:name/weights', { schema: { params: ServiceParams } }, async (req) => {
    const result = await runtime.resetWeights(req.params.name, actorOf(req.headers, req.ip));
    return { service: describeService(serviceOrThrow(runtime, req.params.name), runtime, rolloutOf), change: result.entry };
  });

  app.post<{ Params: ServiceParamsT; Body: Static<typeof ExplainBody> | undefined }>('/services/:name/explain', { schema: { params: ServiceParams, body: ExplainBody } }, async (req) => {
    const service = serviceOrThrow(runtime, req.params.name);
    return explain(service, req.body ?? {});
  });
}
