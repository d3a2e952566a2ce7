// Owns: the process logger (pino JSON; human-readable when stdout is a terminal).
// Must not touch: anything else; every room takes a logger, none creates one.

import { createRequire } from 'node:module';
import { pino, type Logger, type LevelWithSilent } from 'pino';
import type PinoPretty from 'pino-pretty';

export type { Logger };

/** A logger at `level`; pretty-printed on a TTY unless VEER_LOG_FORMAT=json. */
export function createLogger(level: LevelWithSilent = 'info', options: { pretty?: boolean } = {}): Logger {
  const wantPretty = options.pretty ?? (process.stdout.isTTY === true && process.env.VEER_LOG_FORMAT !== 'json');
  const base = { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  return wantPretty ? pino(base, loadPretty()({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid' })) : pino(base);
}

/** pino-pretty, loaded only for a terminal: a JSON-logging veer (every deployment) never pays its 30 modules. */
function loadPretty(): typeof PinoPretty {
  return createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
}
