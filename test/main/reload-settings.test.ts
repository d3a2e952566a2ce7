// What a reload does with the settings read only at start (warned, naming
// each key) and with log.level (applied at once), against a real veer process.

import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import t from 'tap';
import { startUpstream } from '../helpers/upstreams.ts';
import { serviceConfig, spawnVeer, writeConfig } from '../helpers/veer.ts';

const config = (url: string, level: string, top = '') => serviceConfig({ versions: { v1: url }, top }).replace('log: { level: silent }', `log: { level: ${level} }`);

/** Sends bytes that are not HTTP; veer answers 400 and logs it at debug level. */
function sendMalformed(address: string): Promise<void> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve) => {
    const socket = connect(port, host, () => socket.write('NOT HTTP\r\n\r\n'));
    socket.on('data', () => {});
    socket.on('close', () => resolve());
    socket.on('error', () => resolve());
  });
}

t.test('a reload applies log.level at once and warns for each restart-only key it cannot apply', async (t) => {
  const upstream = await startUpstream('v1');
  const file = writeConfig(config(upstream.url, 'info'));
  const veer = spawnVeer(['serve', '--config', file]);
  t.teardown(async () => {
    veer.child.kill('SIGKILL');
    await upstream.close();
  });
  const serving = await veer.waitForLog('veer is serving');
  const address = String(serving.listen);

  await sendMalformed(address);
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.notMatch(veer.output(), /rejected malformed request/, 'at info level, debug lines are not written');

  writeFileSync(file, config(upstream.url, 'debug', 'state: { path: var/elsewhere.json }\n').replace('listen: 127.0.0.1:0\n', 'listen: 127.0.0.1:1\n'));
  veer.child.kill('SIGHUP');
  await veer.waitForLog('config reloaded');
  const warned = [await veer.waitForLog('listen changed in the config; it applies at the next restart (the rest of the config is applied)'), await veer.waitForLog('state changed in the config; it applies at the next restart (the rest of the config is applied)')];
  t.same(warned.map((w) => w.key), ['listen', 'state'], 'each warning names its key');
  t.notMatch(veer.output(), /admin\.listen changed|workers changed/, 'keys that did not change are not warned about');

  await sendMalformed(address);
  const debug = await veer.waitForLog('rejected malformed request', 5000);
  t.equal(debug.level, 20, 'debug lines are written after the reload, by the same process');
  t.equal(Number(serving.pid ?? debug.pid), Number(debug.pid), 'same pid: nothing restarted');
});
