// The admin API under /api/v1, mounted on the admin server: auth, the one
// error shape, strict JSON-schema validation, then the route plugins.
//
//   onRequest: auth (root hook: every route and the 404 handler)
//   /api/v1 ── services, weights, explain   (api-services.ts)
//           ├─ shift, rollout and its verbs (api-rollouts.ts)
//           ├─ releases and their verbs     (api-releases.ts)
//           ├─ history                      (api-history.ts)
//           ├─ stats                        (api-stats.ts)
//           └─ stats/series                 (dashboard.ts)
//   /, /dashboard/*  the dashboard page      (dashboard.ts)

import { createRequire } from 'node:module';
import type { Ajv as AjvClass, ValidateFunction } from 'ajv';
import type { FastifyInstance } from 'fastify';
import type { ReleaseEngine, RolloutEngine } from '../rollout/index.ts';
import type { RuntimeState } from '../state/index.ts';
import { installAdminAuth } from './api-auth.ts';
import { installErrorShape } from './api-errors.ts';
import { historyRoutes } from './api-history.ts';
import { releaseRoutes } from './api-releases.ts';
import { rolloutRoutes } from './api-rollouts.ts';
import { servicesRoutes, type ExplainService } from './api-services.ts';
import { statsRoutes, type StatsSource } from './api-stats.ts';
import { dashboardRoutes } from './dashboard.ts';
import type { EndpointsOf, RolloutStatusOf } from './api-views.ts';

/** What the admin API drives. */
export interface AdminApi {
  readonly runtime: RuntimeState;
  /** The rollout and shift engine; without it the rollout and shift routes answer 404. */
  readonly rollouts?: RolloutEngine;
  /** The release engine; without it the release routes answer 404. */
  readonly releases?: ReleaseEngine;
  /** Explains a routing choice (the router's explain, wired by main.ts). */
  readonly explain: ExplainService;
  /** The admin token, read per request (a reload may change it); empty or undefined = no auth. */
  readonly token: () => string | undefined;
  /** Per-version traffic windows for GET /api/v1/stats and the dashboard; without it both are absent. */
  readonly stats?: StatsSource;
  /** Endpoint states for GET /api/v1/services/{name}. */
  readonly endpoints?: EndpointsOf;
}

const ACTOR_PATTERN = /^[\w.@:/+-][\w.@:/+ -]{0,63}$/;

/** Who made a change, for the history: `x-veer-actor` (the CLI sends `cli:USER`) and the peer address. */
export function actorOf(headers: Record<string, unknown>, ip: string): string {
  const claimed = headers['x-veer-actor'];
  return typeof claimed === 'string' && ACTOR_PATTERN.test(claimed) ? `${claimed} (${ip})` : `api (${ip})`;
}

/**
 * Validation is strict: no type coercion ("90" is not a number), no silent
 * removal of unknown keys. Fastify's default Ajv does both, so the API uses
 * its own.
 */
function createValidatorCompiler() {
  // Each route's schema is compiled on the route's first request, not at start (most routes
  // of a running veer are never called), and Ajv itself is loaded then: 30 ms less to start.
  let ajv: AjvClass | undefined;
  const compile = (schema: object): ValidateFunction => {
    if (ajv === undefined) {
      const { Ajv } = createRequire(import.meta.url)('ajv') as { Ajv: typeof AjvClass };
      ajv = new Ajv({ allErrors: false, coerceTypes: false, removeAdditional: false, useDefaults: true, strict: false });
    }
    return ajv.compile(schema);
  };
  return ({ schema }: { schema: object }) => {
    let compiled: ValidateFunction | undefined;
    const validate = (data: unknown): boolean => {
      compiled ??= compile(schema);
      const valid = compiled(data) as boolean;
      validate.errors = compiled.errors;
      return valid;
    };
    validate.errors = null as ValidateFunction['errors'];
    return validate;
  };
}

/** Mounts auth, the error shape and the /api/v1 routes on the admin server. */
export function registerAdminApi(app: FastifyInstance, api: AdminApi): void {
  installErrorShape(app);
  installAdminAuth(app, api.token);
  const engine = api.rollouts;
  const rolloutOf: RolloutStatusOf = engine ? (service) => engine.status(service) : () => null;
  app.register(
    async (v1) => {
      v1.setValidatorCompiler(createValidatorCompiler());
      // Bodies are JSON only: a text/plain body is 415 like any other type, not a schema failure.
      v1.removeContentTypeParser('text/plain');
      // A POST without a body (curl -X POST, the CLI's verbs) is an empty object, not a schema failure.
      v1.addHook('preValidation', async (req) => {
        if (req.body === undefined && req.method === 'POST') req.body = {};
      });
      await v1.register(servicesRoutes, { runtime: api.runtime, rolloutOf, actorOf, explain: api.explain, ...(api.endpoints && { endpointsOf: api.endpoints }) });
      await v1.register(historyRoutes, { runtime: api.runtime });
      if (engine) await v1.register(rolloutRoutes, { runtime: api.runtime, engine, actorOf });
      if (api.releases) await v1.register(releaseRoutes, { releases: api.releases, actorOf });
      if (api.stats) await v1.register(statsRoutes, { runtime: api.runtime, stats: api.stats });
    },
    { prefix: '/api/v1' },
  );
  if (api.stats) app.register(dashboardRoutes, { runtime: api.runtime, stats: api.stats, token: api.token });
}
