#!/usr/bin/env node
// The `veer` command. It runs the compiled JavaScript in dist/ (`npm run build`,
// which `npm ci` runs too), so Node neither loads its TypeScript stripper nor
// strips each module at start. It runs the TypeScript sources instead when
// there is no build, when a source file is newer than the build (an edit is
// never shadowed by a stale build), or when VEER_FROM_SOURCE=1 (the tests).
import { existsSync, readdirSync, statSync } from 'node:fs';
import nodeModule from 'node:module';

const root = new URL('../', import.meta.url);
const compiled = new URL('dist/cli.js', root);
const sources = new URL('src/', root);

function newestSourceMs() {
  let newest = 0;
  for (const entry of readdirSync(sources, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(`${entry.parentPath}/${entry.name}`).mtimeMs);
  }
  return newest;
}

function useCompiled() {
  if (process.env.VEER_FROM_SOURCE === '1' || !existsSync(compiled)) return false;
  // An image ships dist/ without src/; a checkout compares the two.
  return !existsSync(sources) || statSync(compiled).mtimeMs >= newestSourceMs();
}

const fromBuild = useCompiled();
// V8's code cache on disk (NODE_COMPILE_CACHE, else <tmpdir>/node-compile-cache): every start
// after the first skips compiling veer's and its dependencies' code, 40 ms of a 450 ms start
// here. Where the folder cannot be written it does nothing. Only for the build: the sources
// run under the tests, many at once.
if (fromBuild) nodeModule.enableCompileCache?.();
const { main } = await import(fromBuild ? compiled.href : new URL('src/cli/index.ts', root).href);
await main(process.argv);
// Exit explicitly: a finished command should not wait on idle handles (watchers, keep-alive pools).
process.exit(process.exitCode ?? 0);
