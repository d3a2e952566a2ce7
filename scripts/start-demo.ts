// `npm start`: the demo upstreams (v1 on :3001, v2 on :3002) and the real
// `veer serve` on config/veer.yaml (compiled by the build `npm start` runs
// first). Ctrl-C stops everything.

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { startDemoUpstream } from '../examples/demo-upstream.ts';

const root = join(import.meta.dirname, '..');
const configPath = process.env.VEER_CONFIG ?? 'config/veer.yaml';
const upstreams = await Promise.all([startDemoUpstream('v1', 3001), startDemoUpstream('v2', 3002)]);
process.stderr.write('demo upstreams: v1 on http://127.0.0.1:3001, v2 on http://127.0.0.1:3002\n');

const veer = spawn(process.execPath, [join(root, 'bin', 'veer.js'), 'serve', '--config', configPath], { cwd: root, stdio: 'inherit' });
// Either signal is passed on as SIGTERM: veer drains once, whether or not the terminal's
// Ctrl-C reached it too (a second stop signal is the same stop).
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => veer.kill('SIGTERM'));
veer.on('exit', (code, signal) => {
  for (const s of upstreams) s.close();
  process.exit(code ?? (signal ? 1 : 0));
});
