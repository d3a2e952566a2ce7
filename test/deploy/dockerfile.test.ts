// The Dockerfile and .dockerignore, checked without a Docker engine: lint it
// (dockerfile-utils, every rule an error), then check what it promises: Node 24
// slim pinned to the project's Node, production dependencies only, non-root,
// a HEALTHCHECK that works, a build context with exactly what it copies, and
// that the code it copies imports nothing the image does not have.

import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import t from 'tap';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { validate, ValidationSeverity, type ValidatorSettings } from 'dockerfile-utils';
import { parse, parseAllDocuments } from 'yaml';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { parseListenAddress } from '../../src/config/index.ts';
import { ROOT } from '../helpers/veer.ts';

const DOCKERFILE = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const DOCKERIGNORE = readFileSync(join(ROOT, '.dockerignore'), 'utf8');
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
const LOCK = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version: string }> };
const dockerfile = DockerfileParser.parse(DOCKERFILE);

// What the image has to agree with: the Kubernetes Deployment and its config.
const deployment = parseAllDocuments(readFileSync(join(ROOT, 'deploy/kubernetes/base/deployment.yaml'), 'utf8'))[0]!.toJS() as IDeployment;
const k8sConfig = parse(readFileSync(join(ROOT, 'deploy/kubernetes/base/veer.yaml'), 'utf8')) as { listen: string; admin: { listen: string } };
const DATA_PORT = parseListenAddress(k8sConfig.listen)!.port;
const ADMIN_PORT = parseListenAddress(k8sConfig.admin.listen)!.port;

/** Every rule at error severity: warnings fail the test too. */
const STRICT: ValidatorSettings = {
  deprecatedMaintainer: ValidationSeverity.ERROR,
  directiveCasing: ValidationSeverity.ERROR,
  emptyContinuationLine: ValidationSeverity.ERROR,
  instructionCasing: ValidationSeverity.ERROR,
  instructionCmdMultiple: ValidationSeverity.ERROR,
  instructionEntrypointMultiple: ValidationSeverity.ERROR,
  instructionHealthcheckMultiple: ValidationSeverity.ERROR,
  instructionJSONInSingleQuotes: ValidationSeverity.ERROR,
  instructionWorkdirRelative: ValidationSeverity.ERROR,
};

/** The instructions of each stage, in order; the last one is the image. */
function stages(): { name: string | null; image: string; instructions: Instruction[] }[] {
  const args = new Map<string, string>();
  const out: { name: string | null; image: string; instructions: Instruction[] }[] = [];
  for (const i of dockerfile.getInstructions()) {
    if (i.getKeyword() === 'FROM') {
      const from = dockerfile.getFROMs().find((f) => f.getRange().start.line === i.getRange().start.line)!;
      const image = from.getImage()!.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string | undefined, b: string | undefined) => args.get((a ?? b)!) ?? '');
      out.push({ name: from.getBuildStage(), image, instructions: [] });
    } else if (out.length === 0 && i.getKeyword() === 'ARG') {
      const [name, value = ''] = i.getArgumentsContent()!.split('=');
      args.set(name!.trim(), value.trim());
    } else {
      out.at(-1)?.instructions.push(i);
    }
  }
  return out;
}

const all = stages();
const runtime = all.at(-1)!;
const of = (keyword: string, stage = runtime) => stage.instructions.filter((i) => i.getKeyword() === keyword);
/** An exec-form instruction's array (CMD, ENTRYPOINT, HEALTHCHECK ... CMD [...]). */
const execForm = (i: Instruction | undefined) => JSON.parse((i?.getArgumentsContent() ?? '').replace(/^.*?(?=\[)/s, '')) as string[];
const flags = (i: Instruction) => ('getFlags' in i ? (i as Instruction & { getFlags(): { getName(): string; getValue(): string | null }[] }).getFlags() : []);

t.test('the linter finds nothing, with every rule an error', async (t) => {
  const found = validate(DOCKERFILE, STRICT).map((d) => `${d.range.start.line + 1}: ${d.message}`);
  t.same(found, [], 'dockerfile-utils');
  // ... and it is awake: a broken Dockerfile gets findings on every broken line.
  const broken = 'FROM\nworkdir app\nHEALTHCHECK --intervall=3s CMD true\nCOPY --form=deps a b\nCMD [\'a\']\n';
  const lines = new Set(validate(broken, STRICT).map((d) => d.range.start.line + 1));
  t.same([...lines].sort(), [1, 2, 3, 4, 5], 'a broken Dockerfile is caught');
});

t.test('base images: Node 24 slim, pinned to the project\'s Node', async (t) => {
  const lockNode = LOCK.packages['node_modules/node']?.version;
  t.match(lockNode, /^24\./, 'the node devDependency is Node 24');
  t.ok(all.length >= 2, 'multi-stage');
  for (const stage of all) {
    t.equal(stage.image, `node:${lockNode}-slim`, `stage ${stage.name ?? '(runtime)'}: node:${lockNode}-slim`);
  }
});

t.test('production dependencies only, from the lockfile', async (t) => {
  const deps = all.find((s) => s.name === 'deps');
  const install = of('RUN', deps).map((i) => i.getArgumentsContent() ?? '').join('\n');
  t.match(install, /\bnpm ci\b[^\n&]*--omit=dev/, 'deps: npm ci --omit=dev');
  t.notMatch(DOCKERFILE, /npm (install|i)\b/, 'never npm install (ignores the lockfile)');
  const copies = of('COPY').map((i) => ({ args: i.getArguments().map((a) => a.getValue()), from: flags(i).find((f) => f.getName() === 'from')?.getValue() }));
  t.same(
    copies.filter((c) => c.from),
    [
      { args: ['/app/node_modules', './node_modules'], from: 'deps' },
      { args: ['/app/dist', './dist'], from: 'build' },
    ],
    'node_modules come from the deps stage, dist/ from the build stage',
  );
  t.same(of('RUN').filter((i) => /\bnpm\b/.test(i.getArgumentsContent() ?? '')), [], 'the runtime stage runs no npm');
  t.same(copies.filter((c) => !c.from).map((c) => c.args[0]).sort(), ['bin', 'config', 'package.json'], 'copies package.json, bin, config; no TypeScript');
});

t.test('the build stage compiles src/ with the build npm run build runs', async (t) => {
  const build = all.find((s) => s.name === 'build');
  t.ok(build, 'there is a build stage');
  const runs = of('RUN', build).map((i) => i.getArgumentsContent() ?? '');
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  t.same(runs.at(-1), pkg.scripts.build, 'its last step is `npm run build`\'s command');
  t.match(runs[0], /\bnpm ci\b/, 'dependencies from the lockfile');
  t.match(runs[0], /--ignore-scripts/, 'npm ci does not build before the sources are there');
});

t.test('the runtime stage: non-root, ports, entry point and command', async (t) => {
  const user = of('USER').at(-1)?.getArgumentsContent() ?? '';
  const [uid] = user.split(':');
  t.match(uid, /^[1-9][0-9]*$/, `USER ${user}: a numeric non-root uid (runAsNonRoot can check it)`);
  t.equal(Number(uid), deployment.spec?.template.spec?.securityContext?.runAsUser, 'the Deployment runs as the same uid');
  t.same(of('EXPOSE').flatMap((i) => i.getArguments().map((a) => Number(a.getValue()))), [DATA_PORT, ADMIN_PORT], 'EXPOSE listen and admin.listen');
  t.same(execForm(of('ENTRYPOINT')[0]), ['node', 'bin/veer.js'], 'ENTRYPOINT node bin/veer.js');
  t.ok(existsSync(join(ROOT, 'bin/veer.js')));
  const cmd = execForm(of('CMD')[0]);
  t.same(cmd, deployment.spec?.template.spec?.containers[0]?.args, 'CMD is what the Deployment runs');
  t.same(of('WORKDIR').map((i) => i.getArgumentsContent()), ['/app'], 'WORKDIR /app');
  const env = of('ENV').map((i) => i.getArgumentsContent()).join(' ');
  t.match(env, /NODE_ENV=production/);
});

t.test('HEALTHCHECK: GET /healthz on the admin listener', async (t) => {
  const [healthcheck] = of('HEALTHCHECK');
  t.ok(healthcheck, 'there is one');
  const command = execForm(healthcheck);
  t.equal(command[0], 'node', 'runs node (the slim image has no curl)');
  t.match(command.join(' '), `127.0.0.1:${ADMIN_PORT}`, 'defaults to the admin port');
  t.same(flags(healthcheck!).map((f) => f.getName()).sort(), ['interval', 'retries', 'start-period', 'timeout']);
  // Run it against a stand-in admin listener: 200 -> 0, 503 -> 1, nothing listening -> 1.
  let status = 200;
  const paths: string[] = [];
  const server = createServer((req, res) => {
    paths.push(req.url ?? '');
    res.writeHead(status).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const probe = () =>
    new Promise<number>((r) => {
      execFile(process.execPath, command.slice(1), { env: { ...process.env, VEER_ADMIN_URL: url }, timeout: 10_000 }, (err) => r(err ? Number(err.code ?? 1) : 0));
    });
  t.equal(await probe(), 0, 'healthy: exit 0');
  status = 503;
  t.equal(await probe(), 1, 'unhealthy: exit 1');
  await new Promise((r) => server.close(r));
  t.equal(await probe(), 1, 'nothing listening: exit 1');
  t.same(paths, ['/healthz', '/healthz'], 'asks for /healthz');
});

/** .dockerignore as Docker reads it: last matching line wins; a pattern also matches a file's parent folders. */
function isIgnored(path: string): boolean {
  let ignored = false;
  for (const raw of DOCKERIGNORE.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const negated = line.startsWith('!');
    const pattern = (negated ? line.slice(1) : line).replace(/^\/+|\/+$/g, '');
    const regex = new RegExp(
      `^${pattern
        .split(/(\*\*\/?|\*|\?)/)
        .map((part) => (part === '**/' ? '(.*/)?' : part === '**' ? '.*' : part === '*' ? '[^/]*' : part === '?' ? '[^/]' : part.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
        .join('')}$`,
    );
    const parts = path.split('/');
    if (parts.some((_, i) => regex.test(parts.slice(0, i + 1).join('/')))) ignored = !negated;
  }
  return ignored;
}

t.test('.dockerignore: the build context holds exactly what the Dockerfile copies', async (t) => {
  const sources = all.flatMap((s) => of('COPY', s)).filter((i) => !flags(i).some((f) => f.getName() === 'from')).flatMap((i) => i.getArguments().slice(0, -1).map((a) => a.getValue()));
  const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean);
  const copied = (f: string) => sources.some((s) => f === s || f.startsWith(`${s}/`));
  t.same(files.filter((f) => copied(f) && isIgnored(f)), [], 'nothing the Dockerfile copies is ignored');
  t.same(files.filter((f) => !copied(f) && !isIgnored(f)), [], 'nothing else is sent to the builder');
  for (const f of ['node_modules/undici/package.json', '.git/HEAD', 'test/errors.test.ts', 'config/var/veer-state.json', 'Dockerfile', 'dist/cli.js']) t.ok(isIgnored(f), `${f} stays out`);
  for (const f of sources) t.ok(existsSync(join(ROOT, f)), `${f} exists`);
});

/** Import specifiers a file loads at run time (type-only imports are erased). */
function runtimeImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  const pattern = /(?:^|[;\s])(?:import|export)\s+(type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)|(?:\brequire\w*|\))\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (const m of text.matchAll(pattern)) if (!m[1]) found.push((m[2] ?? m[3] ?? m[4])!);
  return found;
}

t.test('the image has everything the code imports at run time', async (t) => {
  // src/ is in the image as dist/, bundled (test/scripts/build.test.ts runs that form).
  const inImage = ['bin/', 'src/', 'config/'];
  const seen = new Set<string>();
  // From the entry point and every source file: some are loaded by path, not
  // by import (the node:cluster worker's entry).
  const sources = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) => /\.[cm]?[jt]s$/.test(f));
  const queue = [join(ROOT, 'bin/veer.js'), ...sources.map((f) => join(ROOT, 'src', f))];
  const outside: string[] = [];
  const devOnly = new Set<string>();
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of runtimeImports(file)) {
      if (spec.startsWith('.')) {
        const target = resolve(dirname(file), spec);
        if (!inImage.some((d) => relative(ROOT, target).startsWith(d)) || !existsSync(target)) outside.push(`${relative(ROOT, file)} -> ${spec}`);
        else queue.push(target);
        continue;
      }
      // The dashboard's browser modules import from the admin server's own URLs (/dashboard/vendor/uplot.js).
      if (spec.startsWith('/dashboard/')) continue;
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      if (spec.startsWith('node:') || builtinModules.includes(name)) continue;
      if (!(name in PKG.dependencies)) devOnly.add(`${name} (${relative(ROOT, file)})`);
    }
  }
  t.ok(seen.size > 20, `followed ${seen.size} files`);
  t.same(outside, [], 'every local import is a file under bin/, src/ or config/');
  t.same([...devOnly], [], 'every package import is a production dependency (npm ci --omit=dev installs only those)');
});
