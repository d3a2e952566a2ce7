// `npm start`: the demo upstreams (v1 on :3001, v2 on :3002) and veer on
// config/veer.yaml, in one process. Ctrl-C stops everything.

import { startDemoUpstream } from '../examples/demo-upstream.ts';
import { runServe, StartupError } from '../src/main.ts';
import { formatIssue } from '../src/cli/index.ts';

const configPath = process.env.VEER_CONFIG ?? 'config/veer.yaml';
const upstreams = await Promise.all([startDemoUpstream('v1', 3001), startDemoUpstream('v2', 3002)]);
process.stderr.write('demo upstreams: v1 on http://127.0.0.1:3001, v2 on http://127.0.0.1:3002\n');
try {
  const code = await runServe({ configPath });
  for (const s of upstreams) s.close();
  process.exit(code);
} catch (err) {
  if (!(err instanceof StartupError)) throw err;
  process.stderr.write(`veer: ${err.message}\n`);
  for (const issue of err.issues) process.stderr.write(`${formatIssue(configPath, issue)}\n`);
  process.exit(1);
}
