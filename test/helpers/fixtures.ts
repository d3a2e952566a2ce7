// YAML config fixtures under test/fixtures/{valid,invalid} and what each one
// says about itself in leading comments:
//
//   # env: NAME=value                              set while loading it
//   # expect: PATH CODE LINE:COL [~"substring"]    one expected issue each
//
// and a check of config text that reports load and compile issues the way
// `veer validate` does (compile issues located in the file).

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatConfigPath, parseConfigText, type ConfigIssue } from '../../src/config/index.ts';
import { compileTable, type CompileResult } from '../../src/table/index.ts';
import { ROOT } from './veer.ts';

/** test/fixtures. */
export const FIXTURES = join(ROOT, 'test', 'fixtures');

/** One issue a fixture expects. */
export interface ExpectedIssue {
  readonly path: string;
  readonly code: string;
  readonly line: number;
  readonly column: number;
  readonly messageIncludes?: string;
}

/** A fixture file and its directives. */
export interface Fixture {
  readonly name: string;
  readonly file: string;
  readonly text: string;
  readonly env: Record<string, string>;
  readonly expect: readonly ExpectedIssue[];
}

const EXPECT = /^# expect: (\S+) (\S+) (\d+):(\d+)(?: ~"((?:[^"\\]|\\.)*)")?\s*$/;
const ENV = /^# env: ([A-Za-z_][A-Za-z0-9_]*)=(.*)$/;

/** Every `.yaml` fixture of a kind, sorted by name. */
export function listFixtures(kind: 'valid' | 'invalid'): Fixture[] {
  const dir = join(FIXTURES, kind);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((name) => readFixture(join(dir, name)));
}

/** Reads a fixture and parses its `# env:` and `# expect:` lines; throws on a malformed directive. */
export function readFixture(file: string): Fixture {
  const text = readFileSync(file, 'utf8');
  const env: Record<string, string> = {};
  const expect: ExpectedIssue[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('# expect:')) {
      const m = EXPECT.exec(line);
      if (!m) throw new Error(`${file}: malformed directive: ${line}`);
      expect.push({
        path: m[1]!,
        code: m[2]!,
        line: Number(m[3]),
        column: Number(m[4]),
        ...(m[5] !== undefined ? { messageIncludes: m[5].replace(/\\(.)/g, '$1') } : {}),
      });
    } else if (line.startsWith('# env:')) {
      const m = ENV.exec(line);
      if (!m) throw new Error(`${file}: malformed directive: ${line}`);
      env[m[1]!] = m[2]!;
    }
  }
  return { name: file.slice(file.lastIndexOf('/') + 1), file, text, env, expect };
}

/** The outcome of loading and compiling config text. */
export type CheckResult =
  | { readonly ok: true; readonly compiled: Extract<CompileResult, { ok: true }> }
  | { readonly ok: false; readonly stage: 'load' | 'compile'; readonly issues: readonly ConfigIssue[] };

/** Loads then compiles `text`; compile issues get their path formatted and their line:column. */
export function checkConfigText(text: string, env: NodeJS.ProcessEnv = {}): CheckResult {
  const loaded = parseConfigText(text, env);
  if (!loaded.ok) return { ok: false, stage: 'load', issues: loaded.issues };
  const compiled = compileTable(loaded.config);
  if (compiled.ok) return { ok: true, compiled };
  const issues = compiled.issues.map((i) => ({
    code: i.code,
    path: formatConfigPath(i.path),
    message: i.message,
    ...loaded.locate(i.path, i.atKey === true),
  }));
  return { ok: false, stage: 'compile', issues };
}
