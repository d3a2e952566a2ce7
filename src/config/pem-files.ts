// PEM files that the config names (etcd's client TLS today, the TLS
// listener's certificates next): read relative to the config file's
// directory, checked to be PEM that TLS accepts, and reported with their
// config path when not. Reading them is part of loading the config, so
// `veer validate`, the start and every room that needs them share one reader.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import type { ConfigIssueCode } from '../errors.ts';
import type { PathIssue } from './load.ts';
import type { Config } from './schema.ts';

/**
 * Reads one PEM file named at `path` in the config; on failure adds an issue
 * (`config_unreadable`, or `badPem` when it holds no PEM block) and returns null.
 */
export function readPemFile(file: string, baseDir: string, path: readonly (string | number)[], badPem: ConfigIssueCode, issues: PathIssue[]): Buffer | null {
  const absolute = resolve(baseDir, file);
  let data: Buffer;
  try {
    data = readFileSync(absolute);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    issues.push({ code: 'config_unreadable', path, message: `cannot read ${absolute}: ${e.code ?? e.message}` });
    return null;
  }
  if (data.includes('-----BEGIN ')) return data;
  issues.push({ code: badPem, path, message: `${absolute} is not a PEM file (no -----BEGIN line)` });
  return null;
}

/** Adds an issue when TLS would refuse `parts` later (a key that does not match its certificate, a broken PEM body). */
export function checkTlsUsable(parts: SecureContextOptions, what: string, path: readonly (string | number)[], code: ConfigIssueCode, issues: PathIssue[]): void {
  try {
    createSecureContext(parts);
  } catch (err) {
    issues.push({ code, path, message: `${what} cannot be used for TLS: ${(err as Error).message}` });
  }
}

/** What the etcd client needs beyond the endpoints. Never log it. */
export interface EtcdSecurity {
  /** TLS: the CA to trust (null: the system's), and the client certificate and key for mutual TLS. */
  readonly tls?: { readonly ca: Buffer | null; readonly cert?: Buffer; readonly key?: Buffer };
  readonly auth?: { readonly username: string; readonly password: string };
}

/** The files read, or every one that could not be, with its config path. */
export type EtcdSecurityResult = { readonly ok: true; readonly security: EtcdSecurity } | { readonly ok: false; readonly issues: PathIssue[] };

const TLS_FILES = ['ca', 'cert', 'key'] as const;

/**
 * Reads the TLS files of `state.etcd.tls` (paths relative to `baseDir`, the
 * config file's directory) and the user of `state.etcd.auth`. Nothing to
 * read for the file store.
 */
export function readEtcdSecurity(state: Config['state'], baseDir: string): EtcdSecurityResult {
  const etcd = state.store === 'etcd' ? state.etcd : undefined;
  if (etcd === undefined) return { ok: true, security: {} };
  const issues: PathIssue[] = [];
  const read: Partial<Record<(typeof TLS_FILES)[number], Buffer>> = {};
  for (const name of TLS_FILES) {
    const file = etcd.tls?.[name];
    if (file === undefined) continue;
    const data = readPemFile(file, baseDir, ['state', 'etcd', 'tls', name], 'invalid_etcd_tls', issues);
    if (data !== null) read[name] = data;
  }
  if (read.ca) checkTlsUsable({ ca: read.ca }, 'the CA bundle', ['state', 'etcd', 'tls', 'ca'], 'invalid_etcd_tls', issues);
  if (read.cert && read.key) checkTlsUsable({ cert: read.cert, key: read.key }, 'the client certificate and key', ['state', 'etcd', 'tls', 'key'], 'invalid_etcd_tls', issues);
  if (issues.length > 0) return { ok: false, issues };
  const tls = etcd.tls === undefined ? undefined : { ca: read.ca ?? null, cert: read.cert, key: read.key };
  return { ok: true, security: { tls, auth: etcd.auth && { username: etcd.auth.username, password: etcd.auth.password } } };
}
