// One error shape for the whole admin server: {"error":{"code","message"}}.
// veer's own VeerErrors keep their code and status; Fastify's own errors
// (malformed JSON, schema failures, bodies over the limit, wrong content
// type) become invalid_body, so a script never sees two shapes.

import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { VeerError, type HttpErrorCode } from '../errors.ts';

/** Fastify's body errors and the status each keeps (all with code invalid_body). */
const BODY_ERRORS: Readonly<Record<string, number>> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 400,
  FST_ERR_CTP_EMPTY_JSON_BODY: 400,
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 400,
  FST_ERR_CTP_BODY_TOO_LARGE: 413,
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 415,
  FST_ERR_CTP_INVALID_TYPE: 400,
};

/** Sends `{"error":{"code","message"}}` with `status` (and any `details`, such as a 409's `current`, beside them). */
export function sendError(reply: FastifyReply, status: number, code: HttpErrorCode, message: string, details?: Readonly<Record<string, unknown>>): FastifyReply {
  return reply.code(status).type('application/json; charset=utf-8').send({ error: { ...details, code, message } });
}

/** Installs the error handler that maps every error to the one JSON shape. */
export function installErrorShape(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | VeerError | Error, req, reply) => {
    if (err instanceof VeerError) return sendError(reply, err.status, err.code, err.message, err.details);
    const fastifyErr = err as FastifyError;
    if (fastifyErr.validation) {
      const where = fastifyErr.validationContext ?? 'body';
      return sendError(reply, 400, 'invalid_body', `${where}${fastifyErr.message.startsWith(where) ? fastifyErr.message.slice(where.length) : ` ${fastifyErr.message}`}`);
    }
    const bodyStatus = fastifyErr.code === undefined ? undefined : BODY_ERRORS[fastifyErr.code];
    if (bodyStatus !== undefined) return sendError(reply, bodyStatus, 'invalid_body', fastifyErr.message);
    if (typeof fastifyErr.statusCode === 'number' && fastifyErr.statusCode >= 400 && fastifyErr.statusCode < 500) {
      return sendError(reply, fastifyErr.statusCode, 'invalid_body', fastifyErr.message);
    }
    req.log.error({ err }, 'admin request failed');
    return sendError(reply, 500, 'internal_error', 'internal error; see the veer log');
  });
}
