// Regression: a write whose body is not application/json is 415
// invalid_body, as the README says (text/plain used to be 400), and changes nothing.

import t from 'tap';
import { request } from 'undici';
import { runVeerIn, serviceConfig } from '../helpers/veer.ts';

t.test('a body that is not JSON is 415 invalid_body and changes nothing', async (t) => {
  const veer = await runVeerIn(t, serviceConfig({ versions: { v1: 'http://127.0.0.1:1', v2: 'http://127.0.0.1:2' } }));
  const before = veer.veer.state.table.servicesByName.get('svc')!.split.weights;
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'text/plain; charset=utf-8']) {
    const res = await request(`${veer.adminUrl}/api/v1/services/svc/weights`, { method: 'PUT', headers: { 'content-type': type }, body: '{"weights":{"v1":50,"v2":50}}' });
    t.equal(res.statusCode, 415, `${type}: 415`);
    t.match(await res.body.json(), { error: { code: 'invalid_body' } });
  }
  t.same(veer.veer.state.table.servicesByName.get('svc')!.split.weights, before, 'the weights did not change');
  const ok = await request(`${veer.adminUrl}/api/v1/services/svc/weights`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"weights":{"v1":50,"v2":50}}' });
  t.equal(ok.statusCode, 200, 'JSON is accepted');
  await ok.body.dump();
  const verb = await request(`${veer.adminUrl}/api/v1/services/svc/shift`, { method: 'DELETE' });
  t.not(verb.statusCode, 415, 'a write without a body needs no content type');
  await verb.body.dump();
});
