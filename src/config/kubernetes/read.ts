// Reading manifests: files or folders (every *.yaml, *.yml, *.json below a
// folder, names starting with "." skipped: a mounted ConfigMap's `..data`
// links are read through the files that point into them), each file a
// stream of YAML documents; `kind: List` is unpacked.

import { readdir, readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import type * as Yaml from 'yaml';
import { asArray, asRecord } from './fields.ts';
import type { SourcedManifest } from './types.ts';

let yamlModule: typeof Yaml | undefined;
/** The `yaml` package, loaded on first use: a veer without included manifests never loads it. */
function parseAllDocuments(text: string, options: Yaml.ParseOptions): ReturnType<typeof Yaml.parseAllDocuments> {
  return (yamlModule ??= createRequire(import.meta.url)('yaml') as typeof Yaml).parseAllDocuments(text, options);
}

/** A file that could not be read or parsed. */
export interface ReadProblem {
  readonly file: string;
  readonly message: string;
}

/** The manifests of the given paths (relative to `baseDir`), in file order. */
export async function readManifests(paths: readonly string[], baseDir: string): Promise<{ manifests: SourcedManifest[]; problems: ReadProblem[]; files: { file: string; text: string }[] }> {
  const manifests: SourcedManifest[] = [];
  const problems: ReadProblem[] = [];
  const files: { file: string; text: string }[] = [];
  for (const given of paths) {
    const path = resolve(baseDir, given);
    let list: string[];
    try {
      list = (await stat(path)).isDirectory() ? await listFolder(path) : [path];
    } catch (err) {
      problems.push({ file: given, message: `cannot read: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or folder' : (err as Error).message}` });
      continue;
    }
    for (const file of list) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        problems.push({ file, message: `cannot read: ${(err as Error).message}` });
        continue;
      }
      files.push({ file, text });
      const docs = parseAllDocuments(text, { prettyErrors: false });
      const list = Array.isArray(docs) ? docs : [docs];
      const broken = list.find((d) => d.errors.length > 0);
      if (broken !== undefined) {
        problems.push({ file, message: `not YAML: ${broken.errors[0]!.message.split('\n')[0]}` });
        continue;
      }
      list.forEach((doc, index) => {
        const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
        if (value === null || value === undefined) return;
        const record = asRecord(value);
        if (record === undefined) return problems.push({ file, message: `document ${index + 1} is not a Kubernetes object (a mapping)` });
        if (record.kind === 'List') {
          for (const item of asArray(record.items) ?? []) if (asRecord(item) !== undefined) manifests.push({ manifest: item as Record<string, unknown>, file, index });
          return;
        }
        manifests.push({ manifest: record, file, index });
      });
    }
  }
  return { manifests, problems, files };
}

async function listFolder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const full = join(dir, entry.name);
    const isDir = entry.isDirectory() || (entry.isSymbolicLink() && (await stat(full).catch(() => null))?.isDirectory() === true);
    if (isDir) out.push(...(await listFolder(full)));
    else if (/\.(ya?ml|json)$/.test(entry.name)) out.push(full);
  }
  return out;
}
