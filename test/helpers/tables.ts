// Route tables from YAML text, and requests to route through them.

import type { IncomingHttpHeaders } from 'node:http';
import { parseConfigText, type Config } from '../../src/config/index.ts';
import { compileTable, type CompileOptions, type RequestView, type RouteTable } from '../../src/table/index.ts';

/** Parses config text; throws listing the issues when it does not load. */
export function loadYaml(yaml: string, env: NodeJS.ProcessEnv = {}): Config {
  const loaded = parseConfigText(yaml, env);
  if (!loaded.ok) throw new Error(`config does not load:\n${loaded.issues.map((i) => `${i.path}: ${i.message} [${i.code}]`).join('\n')}`);
  return loaded.config;
}

/** Compiles a config; throws listing the issues when it does not compile. */
export function compileOrThrow(config: Config, options: CompileOptions = {}): RouteTable {
  const result = compileTable(config, options);
  if (!result.ok) throw new Error(`config does not compile:\n${result.issues.map((i) => `${i.path.join('.')}: ${i.message} [${i.code}]`).join('\n')}`);
  return result.table;
}

/** Parses and compiles config text. */
export function tableFromYaml(yaml: string, options: CompileOptions = {}): RouteTable {
  return compileOrThrow(loadYaml(yaml), options);
}

/** A request as the router sees it. */
export function request(url: string, headers: IncomingHttpHeaders = {}): RequestView {
  return { url, headers };
}

/**
 * YAML for one service `svc` over versions named in `weights` (config order),
 * upstreams on 127.0.0.1, with optional split `extra` lines (sticky, seed).
 */
export function splitYaml(weights: Readonly<Record<string, number>>, extra = '', name = 'svc'): string {
  const names = Object.keys(weights);
  const versions = names.map((v, i) => `      - { name: ${v}, upstream: "http://127.0.0.1:${3001 + i}" }`).join('\n');
  return `services:
  - name: ${name}
    versions:
${versions}
    split:
      weights: ${JSON.stringify(weights)}
${extra ? `      ${extra}\n` : ''}`;
}
