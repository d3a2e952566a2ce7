// The TLS listener's certificates: pairs named in the config and folders of
// mounted Kubernetes TLS Secrets (every <dir>/*/tls.crt with its tls.key),
// one secure context per pair, picked per handshake by SNI.
//
// SNI goes by each certificate's own names (its DNS SANs; the subject CN only
// when it has none): an exact name first, then a wildcard, which covers
// exactly one label as TLS says (*.shop.test covers a.shop.test, not
// shop.test nor a.b.shop.test); a client without SNI, or with a name no
// certificate has, gets the default certificate.
//
// Files are polled (Kubernetes renews a Secret by swapping a symlink, which
// file watchers miss): a renewed pair reaches the next handshakes, open
// connections keep theirs; a broken pair (unreadable, not PEM, key not
// matching, expired) keeps the last good one and is reported.

import { X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';

/** One certificate file and its key. */
export interface CertificatePair {
  readonly cert: string;
  readonly key: string;
}

/** Where the certificates come from (absolute paths). */
export interface CertificateSources {
  readonly pairs: readonly CertificatePair[];
  /** Folders whose sub-folders hold tls.crt and tls.key (mounted TLS Secrets). */
  readonly dirs: readonly string[];
  /** The certificate file for clients without SNI or with an unknown name; null: the first. */
  readonly defaultCert: string | null;
}

/** A certificate in use, as /readyz and the metrics show it. */
export interface CertificateInfo {
  readonly cert: string;
  readonly names: readonly string[];
  /** ISO 8601. */
  readonly notAfter: string;
  readonly expiresInSeconds: number;
}

/** A pair that could not be used (the last good one, if any, still is). */
export interface CertificateProblem {
  readonly cert: string;
  readonly message: string;
}

interface Loaded {
  readonly pair: CertificatePair;
  readonly names: readonly string[];
  readonly notAfter: Date;
  readonly context: SecureContext;
  readonly cert: Buffer;
  readonly key: Buffer;
  /** mtimes and sizes of both files when read: a change shows in the next poll. */
  readonly stamp: string;
}

function stampOf(pair: CertificatePair): string {
  try {
    const c = statSync(pair.cert);
    const k = statSync(pair.key);
    return `${c.mtimeMs}:${c.size}:${k.mtimeMs}:${k.size}`;
  } catch {
    return 'missing';
  }
}

/** Reads and checks one pair; throws with a message that says what is wrong. */
function loadPair(pair: CertificatePair, now: number): Loaded {
  const stamp = stampOf(pair);
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readFileSync(pair.cert);
    key = readFileSync(pair.key);
  } catch (err) {
    throw new Error(`cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  if (!cert.includes('-----BEGIN ') || !key.includes('-----BEGIN ')) throw new Error('the certificate or the key is not PEM');
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new Error(`not a certificate: ${(err as Error).message}`, { cause: err });
  }
  const notAfter = new Date(x509.validTo);
  if (notAfter.getTime() <= now) throw new Error(`expired on ${notAfter.toISOString()}`);
  let context: SecureContext;
  try {
    context = createSecureContext({ cert, key });
  } catch (err) {
    throw new Error(`the key does not fit the certificate or cannot be used: ${(err as Error).message}`, { cause: err });
  }
  return { pair, names: namesOf(x509), notAfter, context, cert, key, stamp };
}

/** The DNS names a certificate is for: its SANs, else its subject CN. Lowercase. */
export function namesOf(x509: X509Certificate): string[] {
  const sans = (x509.subjectAltName ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4).toLowerCase());
  if (sans.length > 0) return sans;
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(x509.subject)?.[1];
  return cn === undefined ? [] : [cn.toLowerCase()];
}

/** The pairs the sources name now: the explicit ones, then each Secret folder's, in name order. */
function pairsOf(sources: CertificateSources): CertificatePair[] {
  const pairs = [...sources.pairs];
  for (const dir of sources.dirs) {
    let entries: string[];
    try {
      entries = readdirSync(dir).sort();
    } catch {
      continue;
    }
    for (const entry of entries) {
      // Kubernetes' own bookkeeping (..data, ..2024_...) is not a Secret.
      if (entry.startsWith('.')) continue;
      const cert = join(dir, entry, 'tls.crt');
      const key = join(dir, entry, 'tls.key');
      if (existsSync(cert) && existsSync(key)) pairs.push({ cert, key });
    }
  }
  return pairs;
}

/** The certificates the TLS listener serves. */
export class CertificateStore {
  readonly #sources: CertificateSources;
  readonly #onProblem: (problem: CertificateProblem) => void;
  readonly #changeListeners: (() => void)[] = [];
  /** Good pairs by certificate file. */
  #loaded = new Map<string, Loaded>();
  #exact = new Map<string, Loaded>();
  #wildcard = new Map<string, Loaded>();
  #default: Loaded | null = null;
  #timer: NodeJS.Timeout | null = null;
  /** Broken pairs seen, by file, so a pair broken for a while is reported once per change. */
  readonly #broken = new Map<string, string>();
  failures = 0;

  constructor(sources: CertificateSources, options: { onProblem?: (problem: CertificateProblem) => void } = {}) {
    this.#sources = sources;
    this.#onProblem = options.onProblem ?? (() => {});
  }

  /** Calls `listener` whenever the set of certificates in use changed (a renewal, a new Secret). */
  onChange(listener: () => void): void {
    this.#changeListeners.push(listener);
  }

  /** Reads every pair; returns the problems (pairs that could not be used, nothing usable at all). */
  load(now = Date.now()): CertificateProblem[] {
    const problems: CertificateProblem[] = [];
    const next = new Map<string, Loaded>();
    let changed = false;
    for (const pair of pairsOf(this.#sources)) {
      const previous = this.#loaded.get(pair.cert);
      if (previous !== undefined && previous.stamp === stampOf(pair) && previous.pair.key === pair.key) {
        next.set(pair.cert, previous);
        continue;
      }
      try {
        next.set(pair.cert, loadPair(pair, now));
        this.#broken.delete(pair.cert);
        changed = true;
      } catch (err) {
        const problem = { cert: pair.cert, message: (err as Error).message };
        problems.push(problem);
        // The last good one keeps serving; a pair broken the same way is reported once.
        if (previous !== undefined) next.set(pair.cert, previous);
        if (this.#broken.get(pair.cert) !== problem.message) {
          this.#broken.set(pair.cert, problem.message);
          this.failures++;
          this.#onProblem(problem);
        }
      }
    }
    if (next.size !== this.#loaded.size) changed = true;
    this.#loaded = next;
    if (changed) this.#index();
    if (next.size === 0) problems.push({ cert: '(none)', message: 'no usable certificate' });
    return problems;
  }

  /** Polls the files every `intervalMs` and reloads what changed. */
  watch(intervalMs = 2000): void {
    this.#timer ??= setInterval(() => this.load(), intervalMs);
    this.#timer.unref();
  }

  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** The default certificate and key (for the server's own options: clients without SNI). */
  get defaultPair(): { cert: Buffer; key: Buffer } | null {
    return this.#default === null ? null : { cert: this.#default.cert, key: this.#default.key };
  }

  /** The secure context for a handshake's server name (SNI). */
  contextFor(servername: string | undefined): SecureContext | undefined {
    if (servername !== undefined && servername.length > 0) {
      const name = servername.toLowerCase();
      const exact = this.#exact.get(name);
      if (exact !== undefined) return exact.context;
      const dot = name.indexOf('.');
      const wild = dot > 0 ? this.#wildcard.get(name.slice(dot + 1)) : undefined;
      if (wild !== undefined) return wild.context;
    }
    return this.#default?.context;
  }

  /** Every certificate in use. */
  list(now = Date.now()): CertificateInfo[] {
    return [...this.#loaded.values()].map((l) => ({
      cert: l.pair.cert,
      names: l.names,
      notAfter: l.notAfter.toISOString(),
      expiresInSeconds: Math.round((l.notAfter.getTime() - now) / 1000),
    }));
  }

  #index(): void {
    const exact = new Map<string, Loaded>();
    const wildcard = new Map<string, Loaded>();
    // First listed wins a name: explicit pairs, then Secrets in name order.
    for (const loaded of this.#loaded.values()) {
      for (const name of loaded.names) {
        if (name.startsWith('*.')) {
          if (!wildcard.has(name.slice(2))) wildcard.set(name.slice(2), loaded);
        } else if (!exact.has(name)) exact.set(name, loaded);
      }
    }
    this.#exact = exact;
    this.#wildcard = wildcard;
    const wanted = this.#sources.defaultCert;
    this.#default = (wanted !== null ? this.#loaded.get(wanted) : undefined) ?? this.#loaded.values().next().value ?? null;
    for (const listener of this.#changeListeners) listener();
  }
}

/** `tls.certificates` as the config writes them (paths relative to the config file's directory). */
export interface CertificateConfig {
  readonly certificates: readonly ({ readonly cert: string; readonly key: string } | { readonly dir: string })[];
  readonly defaultCertificate?: string;
}

/** A certificate problem placed at its entry of `tls.certificates`. */
export interface PlacedCertificateProblem extends CertificateProblem {
  readonly path: (string | number)[];
}

/** The store for a config's `tls`, loaded once; its problems placed at the entry that names each pair. */
export function openCertificateStore(
  config: CertificateConfig,
  baseDir: string,
  onProblem?: (problem: CertificateProblem) => void,
): { store: CertificateStore; problems: PlacedCertificateProblem[] } {
  const pairs: CertificatePair[] = [];
  const dirs: string[] = [];
  const entryOf = new Map<string, number>();
  config.certificates.forEach((entry, i) => {
    if ('dir' in entry) {
      const dir = resolve(baseDir, entry.dir);
      dirs.push(dir);
      entryOf.set(dir, i);
    } else {
      const pair = { cert: resolve(baseDir, entry.cert), key: resolve(baseDir, entry.key) };
      pairs.push(pair);
      entryOf.set(pair.cert, i);
    }
  });
  const defaultCert = config.defaultCertificate === undefined ? null : resolve(baseDir, config.defaultCertificate);
  const store = new CertificateStore({ pairs, dirs, defaultCert }, onProblem === undefined ? {} : { onProblem });
  const problems = store.load().map((problem): PlacedCertificateProblem => {
    const explicit = entryOf.get(problem.cert);
    if (explicit !== undefined) return { ...problem, path: ['tls', 'certificates', explicit, 'cert'] };
    const dir = dirs.find((d) => problem.cert.startsWith(`${d}/`));
    return { ...problem, path: dir === undefined ? ['tls', 'certificates'] : ['tls', 'certificates', entryOf.get(dir)!, 'dir'] };
  });
  if (defaultCert !== null && !store.list().some((c) => c.cert === defaultCert)) {
    problems.push({ cert: defaultCert, message: 'is not one of the usable certificates of tls.certificates', path: ['tls', 'defaultCertificate'] });
  }
  return { store, problems };
}
